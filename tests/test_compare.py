"""``greenperf compare``: the regression gate, on real result files.

The stored pairs (tests/fixtures/compare_pairs/, regenerate with its regenerate.sh) are 20
pairs of two separate 5-run ``toy`` results of the same code, recorded one after the other
on the shared 2-core development machine.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, greenperf
from greenperf import cli
from greenperf.compare import (
    HIGHER,
    IMPROVED,
    LOWER,
    NO_DATA,
    REGRESSED,
    TOO_FEW_RUNS,
    UNCHANGED,
    MetricComparison,
    compare_docs,
    compare_paths,
    compare_samples,
    parse_threshold,
)
from greenperf.errors import UsageError
from greenperf.progress import Progress
from greenperf.results import write_result
from greenperf.runner import RunRequest, run_workload
from greenperf.stats import mann_whitney_min_p
from greenperf.workload import get_workload

PAIRS = Path(__file__).parent / "fixtures" / "compare_pairs"
# The recipe of the stored pairs: a few thousand samples, ~0.1-0.3 s a run.
TOY_SLOWED = {"learning_rate": "0.002", "max_samples": "40000"}


def _metric(baseline, candidate, better=LOWER) -> MetricComparison:
    return MetricComparison("w", "tiny", "training", "train", "m", "s", better,
                            list(baseline), list(candidate))


def _run_toy(out: Path, runs: int = 5) -> Path:
    torch.set_num_threads(1)
    return run_workload(RunRequest(workload=get_workload("toy"), scale="tiny", runs=runs,
                                   out_dir=out, threads=1, overrides=dict(TOY_SLOWED),
                                   check_compliance=False, progress=Progress(enabled=False)))


def _trimmed(source: Path, dest: Path, runs: int) -> Path:
    """A real result cut to its first ``runs`` runs, re-sealed (a smaller real result)."""
    doc = json.loads(source.read_text())
    for phase in doc["phases"]:
        phase["runs"] = phase["runs"][:runs]
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_result(dest, doc)
    return dest


# -- statistics -------------------------------------------------------------------------------


def test_parse_threshold():
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("0.05") == pytest.approx(0.05)
    assert parse_threshold("12.5%") == pytest.approx(0.125)
    for bad in ("5", "abc", "-3%"):
        with pytest.raises(UsageError):
            parse_threshold(bad)


def test_smallest_p_value_decides_whether_a_test_is_possible():
    assert mann_whitney_min_p(5, 5) == pytest.approx(1 / 252)
    assert mann_whitney_min_p(3, 3) == pytest.approx(1 / 20)
    assert mann_whitney_min_p(1, 1) == pytest.approx(1 / 2)


def test_clear_slowdown_regresses_and_speedup_improves():
    base = [1.00, 1.02, 0.98, 1.01, 0.99]
    slow = [1.30, 1.32, 1.29, 1.35, 1.31]
    m = compare_samples(_metric(base, slow), 0.05, 0.01)
    assert m.verdict == REGRESSED and m.p_value < 0.01
    assert m.ratio == pytest.approx(1.31 / 1.00)
    assert m.ratio_ci95[0] > 1.05
    assert compare_samples(_metric(slow, base), 0.05, 0.01).verdict == IMPROVED


def test_throughput_is_worse_when_it_drops():
    base = [100.0, 101.0, 99.0, 100.5, 99.5]
    drop = [70.0, 71.0, 69.0, 70.5, 69.5]
    assert compare_samples(_metric(base, drop, HIGHER), 0.05, 0.01).verdict == REGRESSED
    assert compare_samples(_metric(drop, base, HIGHER), 0.05, 0.01).verdict == IMPROVED
    # A larger time is not a regression of a higher-is-better metric.
    assert compare_samples(_metric(drop, base, LOWER), 0.05, 0.01).verdict == REGRESSED


def test_significant_but_small_change_is_within_threshold():
    base = [1.000, 1.001, 1.002, 1.003, 1.004]
    cand = [1.020, 1.021, 1.022, 1.023, 1.024]
    m = compare_samples(_metric(base, cand), 0.05, 0.01)
    assert m.p_value < 0.01 and m.verdict == UNCHANGED
    assert "within the 5% threshold" in m.reason


def test_large_but_insignificant_change_does_not_fail():
    base = [1.0, 3.0, 1.2, 2.8, 1.1]
    cand = [1.1, 3.2, 2.9, 1.3, 3.1]
    m = compare_samples(_metric(base, cand), 0.05, 0.01)
    assert m.worse_factor > 1.05 and m.p_value >= 0.01
    assert m.verdict == UNCHANGED and "not significant" in m.reason


def test_too_few_runs_give_no_verdict_even_for_a_huge_change():
    m = compare_samples(_metric([1.0], [10.0]), 0.05, 0.01)
    assert m.verdict == TOO_FEW_RUNS and m.p_value is None
    assert "no significance test possible" in m.reason
    assert compare_samples(_metric([1, 1.1, 0.9], [5, 5.1, 4.9]), 0.05, 0.01).verdict == \
        TOO_FEW_RUNS
    # 4 against 5 runs can reach 1/126 < 0.01.
    assert compare_samples(_metric([1, 1.1, 0.9, 1.05], [5, 5.1, 4.9, 5.2, 5.0]), 0.05,
                           0.01).verdict == REGRESSED


def test_aborted_runs_count_as_slowest():
    base = [1.0, 1.1, 0.9, 1.05, 0.95]
    cand = [math.inf, math.inf, math.inf, 1.2, math.inf]
    m = compare_samples(_metric(base, cand), 0.05, 0.01)
    assert m.verdict == REGRESSED
    assert m.to_dict()["candidate_median"] == "inf"
    assert compare_samples(_metric(base, []), 0.05, 0.01).verdict == NO_DATA


# -- real runs --------------------------------------------------------------------------------


def test_an_injected_slowdown_is_detected(tmp_path, monkeypatch):
    """5 runs, then the same 5 runs with a 10 ms sleep in every train step.

    The sleep is a floor that load cannot shrink: a slowed run of 140-350 steps takes at
    least 1.4 s, ~15x a quiet run's 0.04-0.1 s, so the slowdown stays clear even when
    load makes the baseline runs several times slower. No speed is asserted beyond the
    gate's own verdicts."""
    baseline = _run_toy(tmp_path / "base")
    monkeypatch.setenv("GP_TOY_STEP_SLEEP", "0.01")
    candidate = _run_toy(tmp_path / "slow")
    monkeypatch.delenv("GP_TOY_STEP_SLEEP")

    assert cli.main(["compare", str(baseline), str(candidate)]) == 1
    comparison = compare_paths(baseline, candidate)
    verdicts = {m.metric: m for m in comparison.metrics}
    assert verdicts["time to target"].verdict == REGRESSED
    assert verdicts["train throughput"].verdict == REGRESSED
    # Same seeds, same code path: the slowdown is in time, not in convergence.
    assert verdicts["samples to target"].verdict == UNCHANGED
    assert verdicts["samples to target"].ratio == 1.0

    # The reverse direction is an improvement, which never fails.
    assert cli.main(["compare", str(candidate), str(baseline)]) == 0
    reverse = {m.metric: m.verdict for m in compare_paths(candidate, baseline).metrics}
    assert reverse["time to target"] == IMPROVED


# The stored pairs were recorded back to back on a quiet machine (regenerate.sh). On them the
# gate runs at its 5% default; a threshold alone (no significance test) fails 7 of the 20.
DEFAULT_THRESHOLD = "5%"


def _pair_codes(*options: str) -> dict[str, int]:
    pairs = sorted(p for p in PAIRS.iterdir() if p.is_dir())
    assert len(pairs) == 20
    return {pair.name: cli.main(["compare", str(pair / "baseline.json"),
                                 str(pair / "candidate.json"), "--json", *options])
            for pair in pairs}


def test_same_code_pairs_pass_at_least_19_of_20(capsys):
    codes = _pair_codes("--threshold", DEFAULT_THRESHOLD)
    capsys.readouterr()
    failed = [name for name, code in codes.items() if code != 0]
    assert set(codes.values()) <= {0, 1}
    assert len(failed) <= 1, failed


def test_significance_removes_most_false_alarms(capsys):
    """At the 5% default, a threshold alone would fail half the same-code pairs."""
    with_test = sum(_pair_codes("--threshold", "5%").values())
    threshold_only = sum(_pair_codes("--threshold", "5%", "--alpha", "0.999999").values())
    capsys.readouterr()
    assert threshold_only >= 2 * with_test + 4, (threshold_only, with_test)


def test_exclude_contended_leaves_untrusted_times_out(capsys, tmp_path):
    # A quiet pair whose candidate is made to look like a run on a loaded machine: every run
    # flagged contended, and 40% slower (TTA, throughput and energy).
    import json

    from greenperf.results import write_result

    pair = PAIRS / "pair_06"
    doc = json.loads((pair / "candidate.json").read_text())
    for run in doc["phases"][0]["runs"]:
        run["contention"].update(foreign_cores=1.5, contended=True)
        run["tta_seconds"] *= 1.4
        run["train_seconds"] *= 1.4
        run["train_throughput"] /= 1.4
        if run.get("energy"):
            run["energy"]["total_joules"] *= 1.4
    candidate = tmp_path / "candidate.json"
    write_result(candidate, doc)
    args = ["compare", str(pair / "baseline.json"), str(candidate)]
    assert cli.main(args) == 1
    assert cli.main([*args, "--exclude-contended"]) == 0
    out = capsys.readouterr().out
    assert "5 contended candidate run(s) left out of the time and energy figures" in out
    comparison = compare_paths(pair / "baseline.json", candidate, exclude_contended=True)
    verdicts = {m.metric: m.verdict for m in comparison.metrics}
    assert verdicts["time to target"] == NO_DATA
    assert verdicts["train throughput"] == NO_DATA
    assert verdicts["samples to target"] == UNCHANGED


def test_one_run_against_one_says_so_and_passes(tmp_path):
    pair = PAIRS / "pair_01"
    base = _trimmed(pair / "baseline.json", tmp_path / "b" / "toy_tiny_training.json", 1)
    cand = _trimmed(pair / "candidate.json", tmp_path / "c" / "toy_tiny_training.json", 1)
    proc = greenperf("compare", str(base), str(cand))
    assert proc.returncode == 0, proc.stderr
    assert "too few runs" in proc.stdout
    assert "no verdict: too few runs for a significance test" in proc.stdout


def test_folders_match_by_workload_scale_and_kind(tmp_path):
    pair = PAIRS / "pair_02"
    base_dir, cand_dir = tmp_path / "base", tmp_path / "cand"
    _trimmed(pair / "baseline.json", base_dir / "toy_tiny_training.json", 5)
    _trimmed(pair / "candidate.json", cand_dir / "toy_tiny_training.json", 5)
    # A result only the candidate has is reported, not compared.
    other = json.loads((pair / "candidate.json").read_text())
    other["workload"] = "other"
    write_result(cand_dir / "other_tiny_training.json", other)
    # Reference folders also hold RCP files and other JSON: not results, skipped.
    (base_dir / "rcps").mkdir()
    (base_dir / "rcps" / "rcps_toy_tiny.json").write_text('{"toy_ref_32": {}}')
    (base_dir / "site.json").write_text('{"title": "leaderboard"}')

    proc = greenperf("compare", str(base_dir), str(cand_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["matched"]) == 1
    assert {m["workload"] for m in report["metrics"]} == {"toy"}
    assert any("only in the candidate: other tiny training" in n for n in report["notes"])
    metrics = {m["metric"] for m in report["metrics"]}
    assert metrics == {"time to target", "samples to target", "train throughput",
                       "energy to target"}
    for m in report["metrics"]:
        assert m["ratio_ci95"] is None or m["ratio_ci95"][0] <= m["ratio"] <= m["ratio_ci95"][1]


def test_markdown_output_for_ci_comments(tmp_path):
    pair = PAIRS / "pair_03"
    proc = greenperf("compare", str(pair / "baseline.json"), str(pair / "candidate.json"),
                     "--markdown")
    lines = proc.stdout.splitlines()
    assert lines[0] == "### greenperf compare"
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| workload | phase/scenario | metric |")
    assert table[1].startswith("|---|")
    assert len(table) == 2 + 4
    assert all(row.count("|") == table[0].count("|") for row in table)


def test_usage_errors_exit_2_with_one_line(tmp_path):
    pair = PAIRS / "pair_01"
    proc = greenperf("compare", str(tmp_path / "missing.json"), str(pair / "candidate.json"))
    assert proc.returncode == 2
    assert_one_line_error(proc, "missing.json", "no such result file or folder")

    proc = greenperf("compare", str(pair / "baseline.json"), str(pair / "candidate.json"),
                     "--threshold", "5")
    assert proc.returncode == 2
    assert_one_line_error(proc, "--threshold 5", "ambiguous")

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    proc = greenperf("compare", str(broken), str(pair / "candidate.json"))
    assert proc.returncode == 2
    assert_one_line_error(proc, "broken.json", "not valid JSON")

    other = json.loads((pair / "candidate.json").read_text())
    other["scale"] = "standard"
    write_result(tmp_path / "std.json", other)
    proc = greenperf("compare", str(pair / "baseline.json"), str(tmp_path / "std.json"))
    assert proc.returncode == 2
    assert_one_line_error(proc, "not comparable", "toy standard training vs toy tiny training")


def test_a_hand_edited_file_is_noted(tmp_path):
    pair = PAIRS / "pair_01"
    edited = json.loads((pair / "candidate.json").read_text())
    edited["phases"][0]["runs"][0]["tta_seconds"] *= 0.5  # checksum no longer matches
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    comparison = compare_paths(pair / "baseline.json", path)
    assert any("does not match the stored checksum" in note for note in comparison.notes)


# -- inference sections (read defensively) ----------------------------------------------------


def _inference_doc(p90_ms: list[float], qps: list[float]) -> dict:
    base = json.loads((PAIRS / "pair_01" / "baseline.json").read_text())
    doc = copy.deepcopy(base)
    doc.update(kind="inference", phases=[], workload="mlp")
    doc["inference"] = {"scenario": "SingleStream", "runs": [
        {"target": "mlp", "scenario": "SingleStream", "mode": "performance",
         "metric_name": "p90 latency", "metric_unit": "ns", "metric_value": p90 * 1e6,
         "samples_per_second": rate,
         "latency": {"min_ns": 1, "max_ns": 10**9, "mean_ns": 1.0,
                     "percentiles_ns": {"p50": int(p90 * 0.8e6), "p90": int(p90 * 1e6),
                                        "p99": int(p90 * 1.2e6)}}}
        for p90, rate in zip(p90_ms, qps, strict=True)
    ] + [{"target": "mlp", "scenario": "SingleStream", "mode": "accuracy",
          "samples_per_second": 1.0, "metric_value": 0.9, "metric_name": "accuracy"}]}
    return doc


def test_inference_latency_and_throughput_are_compared():
    base = _inference_doc([1.0, 1.02, 0.98, 1.01, 0.99], [1000, 990, 1010, 1005, 995])
    slow = _inference_doc([1.5, 1.52, 1.48, 1.51, 1.49], [700, 690, 710, 705, 695])
    metrics, _ = compare_docs(base, slow, 0.05, 0.01)
    by_name = {m.metric: m for m in metrics}
    assert set(by_name) == {"throughput", "p90 latency", "latency p50", "latency p90",
                            "latency p99"}
    assert all(m.section == "SingleStream" for m in metrics)
    assert all(m.verdict == REGRESSED for m in metrics)
    assert len(by_name["throughput"].baseline) == 5  # the accuracy-mode entry is not counted
    assert by_name["latency p90"].ratio == pytest.approx(1.5 / 1.0, rel=1e-6)

    single = _inference_doc([1.0], [1000])
    metrics, _ = compare_docs(single, _inference_doc([2.0], [500]), 0.05, 0.01)
    assert {m.verdict for m in metrics} == {TOO_FEW_RUNS}
