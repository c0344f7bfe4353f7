"""Reference results: ``greenperf rcp`` and ``greenperf check --against``.

Reference folders are built here from real ``toy`` runs. Every convergence verdict is also
reached by the official ``mlperf_logging.rcp_checker`` on the same numbers: the toy's samples
to target are written as the official checker reads them (as an epoch-based benchmark with
the same 5 submission runs, ``resnet``), and verdict, message and normalisation factor must
agree.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from greenperf import cli, rcp
from greenperf.checker import check_result
from greenperf.progress import Progress
from greenperf.references import (
    ReferenceResult,
    build_rcps,
    check_against,
    check_convergence_against,
    data_mismatches,
    reference_results,
    speed_factor,
    two_digits,
)
from greenperf.results import read_result
from greenperf.runner import RunRequest, run_workload
from greenperf.stats import olympic_mean
from greenperf.workload import get_workload
from mlperf_logging.rcp_checker import rcp_checker as official
from test_rcp import _mllog

OFFICIAL_BENCHMARK = "resnet"  # epoch-based, 5 submission runs, one run cut at each end
RULESET = "4.0.0"


def _toy(out: Path, runs: int, seeds: list[int], batch_size: int | None = None,
         **overrides: str) -> Path:
    return run_workload(RunRequest(workload=get_workload("toy"), scale="tiny", runs=runs,
                                   seeds=seeds, out_dir=out, threads=1, batch_size=batch_size,
                                   overrides=overrides, check_compliance=False,
                                   progress=Progress(enabled=False)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Reference runs on two 'systems' at three batch sizes, and results to check."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    ten = list(range(100, 110))
    return {
        "ref16": _toy(root / "refs" / "cpu-a-bs16", 10, ten, 16),
        "ref32": _toy(root / "refs" / "cpu-b", 10, list(range(200, 210))),
        "ref64": _toy(root / "refs" / "cpu-a-bs64", 10, ten, 64),
        # The reference algorithm run slower (a smaller learning rate): open division.
        "slow": _toy(root / "slow", 10, ten, learning_rate="0.01"),
        "yours32": _toy(root / "yours32", 5, [0, 1, 2, 3, 4]),
        "yours128": _toy(root / "yours128", 5, [0, 1, 2, 3, 4], 128),
        "open": _toy(root / "open", 5, [0, 1, 2, 3, 4], eval_every="512"),
    }


def _samples(path: Path) -> list[int | None]:
    doc = read_result(path)
    return [r["samples_to_target"] for r in doc["phases"][0]["runs"]]


def _reference_dir(tmp_path: Path, runs: dict[str, Path], names: list[str]) -> Path:
    """A reference folder: the named reference results, and RCPs built from them."""
    root = tmp_path / "reference_results"
    for name in names:
        dest = root / runs[name].parent.name
        dest.mkdir(parents=True)
        (dest / runs[name].name).write_bytes(runs[name].read_bytes())
    assert cli.main(["rcp", str(root), "-o", str(root / "rcps")]) == 0
    return root


def _official(tmp_path: Path, records: dict, batch_size: int,
              samples: list[int | None]) -> tuple[bool, str, float]:
    """The official checker's verdict on the same numbers, in its own vocabulary."""
    rcp_path = tmp_path / "official_rcps.json"
    rcp_path.write_text(json.dumps({
        f"{OFFICIAL_BENCHMARK}_ref_{r['BS']}": {
            "Benchmark": OFFICIAL_BENCHMARK, "BS": r["BS"], "Hyperparams": r["Hyperparams"],
            "Epochs to converge": list(r["samples to converge"])}
        for r in records.values()}))
    folder = tmp_path / "official_logs"
    folder.mkdir()
    for i, converged in enumerate(samples, start=1):
        last = converged if converged is not None else 999
        lines = [_mllog(0, "submission_benchmark", OFFICIAL_BENCHMARK),
                 _mllog(1, "global_batch_size", batch_size),
                 _mllog(2, "run_start"),
                 _mllog(3, "eval_accuracy", 0.9, epoch_num=last),
                 _mllog(4, "run_stop",
                        status="success" if converged is not None else "aborted")]
        (folder / f"result_{i}.txt").write_text("\n".join(lines) + "\n")
    logging.disable(logging.WARNING)
    try:
        with rcp_path.open() as handle:
            passed, message, norm = official.check_directory(
                str(folder), "training", RULESET, False, False, rcp_file=handle,
                rcp_pass="pruned_rcps")
    finally:
        logging.disable(logging.NOTSET)
    return passed, message, float(norm)


def _records(root: Path) -> dict:
    return rcp.load_rcp_records(root / "rcps" / "rcps_toy_tiny.json")


def test_rcp_command_pools_reference_runs(tmp_path, runs):
    root = _reference_dir(tmp_path, runs, ["ref16", "ref32", "ref64"])
    records = _records(root)
    assert sorted(records) == ["toy_ref_16", "toy_ref_32", "toy_ref_64"]
    for record in records.values():
        assert record["Benchmark"] == "toy" and record["Submission runs"] == 5
        assert len(record["samples to converge"]) == 10
    assert sorted(records["toy_ref_32"]["samples to converge"]) == sorted(_samples(runs["ref32"]))
    assert records["toy_ref_64"]["Hyperparams"]["opt_base_learning_rate"] == pytest.approx(0.1)
    # The statistics are the official checker's for the same list.
    rebuilt = rcp.build_rcp_record("toy", 32, records["toy_ref_32"]["samples to converge"], {})
    assert rebuilt["RCP Mean"] == records["toy_ref_32"]["RCP Mean"]


def test_rcp_command_warns_about_thin_and_open_references(tmp_path, runs, capsys):
    root = tmp_path / "refs"
    for name in ("yours32", "open"):
        dest = root / name
        dest.mkdir(parents=True)
        (dest / runs[name].name).write_bytes(runs[name].read_bytes())
    assert cli.main(["rcp", str(root), "-o", str(tmp_path / "rcps")]) == 0
    out = capsys.readouterr().out
    assert "toy BS 32: 5 converged reference run(s); the RCP rule wants at least 10" in out
    assert "open division, not a reference run; skipped" in out
    build = build_rcps(reference_results([root]))
    assert list(build.records) == [("toy", "tiny")]


def test_exact_rcp_passes_like_the_official_checker(tmp_path, runs):
    root = _reference_dir(tmp_path, runs, ["ref16", "ref32", "ref64"])
    doc = read_result(runs["yours32"])
    [finding] = check_convergence_against(doc, root)
    samples = _samples(runs["yours32"])
    assert (finding.passed, finding.message, finding.norm_factor) == \
        _official(tmp_path, _records(root), 32, samples)
    assert finding.verdict == rcp.PASS and finding.rcp["rcp_source"] == "exact"
    ordered = sorted(samples)
    mean = float(np.mean(ordered[1:-1]))
    assert finding.norm_factor == max(1.0, finding.rcp["rcp_mean"] / mean)
    line = finding.line()
    assert "pass (RCP found)" in line
    assert ("normalisation factor" in line) == (finding.norm_factor > 1.0)


def test_interpolated_rcp_like_the_official_checker(tmp_path, runs):
    root = _reference_dir(tmp_path, runs, ["ref16", "ref64"])
    doc = read_result(runs["yours32"])
    [finding] = check_convergence_against(doc, root)
    assert (finding.passed, finding.message, finding.norm_factor) == \
        _official(tmp_path, _records(root), 32, _samples(runs["yours32"]))
    assert finding.verdict == rcp.PASS and finding.rcp["rcp_source"] == "interpolated"
    assert finding.message == "RCP Interpolation"
    low, high = _records(root)["toy_ref_16"], _records(root)["toy_ref_64"]
    assert finding.rcp["rcp_mean"] == pytest.approx(
        np.interp(32, [16, 64], [low["RCP Mean"], high["RCP Mean"]]))
    # These seeds converge a little faster than the interpolated mean: a pass whose score
    # the official rule normalises (the factor the official checker computes too).
    assert finding.norm_factor > 1.0
    assert f"so the score is normalised by {finding.norm_factor:.6g}" in finding.line()


def test_too_fast_convergence_fails_like_the_official_checker(tmp_path, runs, capsys):
    """Against references that needed several times more samples (a slower algorithm)."""
    slow = [s for s in _samples(runs["slow"]) if s is not None]
    record = rcp.build_rcp_record("toy", 32, slow, {"opt_base_learning_rate": 0.01})
    root = tmp_path / "reference_results"
    (root / "rcps").mkdir(parents=True)
    (root / "rcps" / "rcps_toy_tiny.json").write_text(json.dumps({"toy_ref_32": record}))
    doc = read_result(runs["yours32"])
    [finding] = check_convergence_against(doc, root)
    assert (finding.passed, finding.message, finding.norm_factor) == \
        _official(tmp_path, {"toy_ref_32": record}, 32, _samples(runs["yours32"]))
    assert finding.verdict == rcp.FAIL
    assert "did not run the reference algorithm" in finding.line()

    report = check_result(runs["yours32"], run_compliance=False, against=root)
    assert not report.ok
    assert any("FAIL: converges significantly faster" in e for e in report.errors)
    capsys.readouterr()
    code = cli.main(["check", str(runs["yours32"]), "--no-compliance", "--against", str(root)])
    assert code == 1
    assert "did not run the reference algorithm" in capsys.readouterr().out


def test_a_batch_size_without_rcp_is_missing_like_the_official_checker(tmp_path, runs, capsys):
    root = _reference_dir(tmp_path, runs, ["ref16", "ref32", "ref64"])
    doc = read_result(runs["yours128"])
    [finding] = check_convergence_against(doc, root)
    assert (finding.passed, finding.message, finding.norm_factor) == \
        _official(tmp_path, _records(root), 128, _samples(runs["yours128"]))
    assert finding.verdict == rcp.MISSING
    assert finding.message == "Missing RCP, please submit RCP with BS = 128"
    line = finding.line()
    assert "batch size 128" in line and "greenperf rcp" in line

    # Outside a submission a missing batch size warns; in a submission it fails.
    assert check_against(doc, runs["yours128"], root).warnings
    assert check_against(doc, runs["yours128"], root, submission=True).errors
    capsys.readouterr()
    code = cli.main(["check", str(runs["yours128"]), "--no-compliance", "--against", str(root)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "warning:" in out and "no RCP covers this batch size" in out


def test_speed_against_reference_systems(tmp_path, runs):
    root = _reference_dir(tmp_path, runs, ["ref16", "ref32", "ref64"])
    doc = read_result(runs["yours32"])
    report = check_against(doc, runs["yours32"], root)
    assert not report.errors
    systems = {f.system: f for f in report.speed}
    assert set(systems) == {"cpu-a-bs16", "cpu-b", "cpu-a-bs64"}
    finding = systems["cpu-b"]
    theirs = [r["tta_seconds"] for r in read_result(runs["ref32"])["phases"][0]["runs"]]
    yours = [r["tta_seconds"] for r in doc["phases"][0]["runs"]]
    expected = olympic_mean(theirs) / olympic_mean(yours)
    assert finding.factor == pytest.approx(expected)
    assert finding.ci95[0] <= finding.factor <= finding.ci95[1]
    line = [n for n in report.notes if "the reference cpu-b " in n][0]
    assert line.startswith(f"Your system is {two_digits(finding.factor)}x (95% CI "
                           f"{two_digits(finding.ci95[0])}-{two_digits(finding.ci95[1])}) the "
                           "reference cpu-b on toy tiny (5 vs 10 successful runs; ")
    other = [n for n in report.notes if "the reference cpu-a-bs64 " in n][0]
    assert "batch size 32 vs 64" in other
    assert two_digits(1.0) == "1.0" and two_digits(0.634) == "0.63" and two_digits(12.3) == "12"
    # A reference folder holding the checked result itself does not compare it with itself.
    own = root / "me"
    own.mkdir()
    (own / runs["yours32"].name).write_bytes(runs["yours32"].read_bytes())
    again = check_against(doc, own / runs["yours32"].name, root)
    assert "me" not in {f.system for f in again.speed}


def test_speed_factor_statistics():
    factor, ci = speed_factor([3.0, 3.3, 2.7, 3.1, 2.9], [1.0, 1.1, 0.9, 1.05, 0.95])
    assert factor == pytest.approx(3.0)
    assert ci[0] < 3.0 < ci[1] and ci[1] - ci[0] < 1.0
    assert speed_factor([2.0], [1.0]) == (2.0, None)


def test_open_division_and_missing_rcp_file(tmp_path, runs, capsys):
    root = _reference_dir(tmp_path, runs, ["ref32"])
    report = check_against(read_result(runs["open"]), runs["open"], root)
    assert any("closed division only" in n for n in report.notes)
    assert not report.errors and not report.convergence

    empty = tmp_path / "empty"
    (empty / "cpu").mkdir(parents=True)
    report = check_against(read_result(runs["yours32"]), runs["yours32"], empty)
    assert any("no RCP file for toy tiny" in w for w in report.warnings)
    assert any("no reference system" in n for n in report.notes)
    code = cli.main(["check", str(runs["yours32"]), "--no-compliance", "--against",
                     str(tmp_path / "nowhere")])
    assert code == 2
    assert "no such reference folder" in capsys.readouterr().err


def _doc_with_dataset(checksum: str, source: str = "procedural") -> dict:
    return {"workload": "mlp", "scale": "tiny", "phases": [
        {"name": "train", "dataset": {"name": "mnist1d-40k", "source": source,
                                      "checksum": checksum}}]}


def test_data_that_differs_from_the_reference_is_named_and_stops_the_comparison(tmp_path):
    reference = ReferenceResult("ref-sys", tmp_path / "ref.json", _doc_with_dataset("a" * 64))
    assert data_mismatches(_doc_with_dataset("a" * 64), [reference]) == []
    [line] = data_mismatches(_doc_with_dataset("b" * 64), [reference])
    assert line.startswith("train: dataset mnist1d-40k has checksum bbbbbbbbbbbb...")
    assert "ref-sys" in line and "aaaaaaaaaaaa..." in line
    # Real data (a user's local copy) is not the reference's to judge.
    assert data_mismatches(_doc_with_dataset("b" * 64, source="local:/data"), [reference]) == []
