"""greenperf's RCP check must reach the official rcp_checker's verdicts and numbers exactly."""

from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from greenperf.errors import GreenperfError, UsageError
from greenperf.rcp import (
    FAIL,
    INSUFFICIENT,
    MISSING,
    PASS,
    build_rcp_record,
    check_convergence,
    load_rcp_records,
    min_acceptable_mean,
    rcp_record_name,
)
from mlperf_logging.rcp_checker import rcp_checker as official

FIXTURE_RESNET = (
    Path(__file__).parent
    / "fixtures"
    / "mlperf_training_v4.0"
    / "ASUSTeK"
    / "results"
    / "ESC8000A-E12-8xH100-PCIE-80GB"
    / "resnet"
)
# A samples-based benchmark the official checker knows: it reads samples_count from
# eval_accuracy and the RCP key "samples to converge", and assumes 10 submission runs.
BENCH = "llama2_70b_lora"
RUNS = 10
RULESET = "4.0.0"
# Designed so pruning has work to do: BS 4 converges slower than the fastest (BS 8), and
# BS 16 sits above the line from BS 8 to BS 32.
REFERENCE_MEANS = {4: 3400, 8: 3000, 16: 3900, 32: 3600, 64: 4600}


def _samples(mean: float, runs: int, seed: int, spread: float = 0.05) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(round(v)) for v in rng.normal(mean, spread * mean, runs)]


@pytest.fixture(scope="module")
def records() -> dict:
    return {
        rcp_record_name(BENCH, bs): build_rcp_record(
            BENCH, bs, _samples(mean, 2 * RUNS, seed=bs), {"lora_r": 16}, submission_runs=RUNS
        )
        for bs, mean in REFERENCE_MEANS.items()
    }


@pytest.fixture(scope="module")
def rcp_file(records: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rcp") / f"rcps_{BENCH}.json"
    path.write_text(json.dumps(records, indent=1))
    return path


def _mllog(time_ms: int, key: str, value=None, **metadata) -> str:
    record = {
        "namespace": "",
        "time_ms": time_ms,
        "event_type": "POINT_IN_TIME",
        "key": key,
        "value": value,
        "metadata": {"file": "t.py", "lineno": 1, **metadata},
    }
    return ":::MLLOG " + json.dumps(record)


def _write_submission(folder: Path, batch_size: int, samples: list[int | None]) -> None:
    """Result logs as the rcp_checker reads them: the last eval before a successful run_stop."""
    folder.mkdir(parents=True)
    for i, converged_at in enumerate(samples, start=1):
        last = converged_at if converged_at is not None else 5000
        lines = [
            _mllog(0, "submission_benchmark", BENCH),
            _mllog(1, "global_batch_size", batch_size),
            _mllog(2, "run_start"),
            _mllog(3, "eval_accuracy", 0.5, samples_count=last // 2),
            _mllog(4, "eval_accuracy", 0.9, samples_count=last),
            _mllog(5, "run_stop", status="success" if converged_at is not None else "aborted"),
        ]
        (folder / f"result_{i}.txt").write_text("\n".join(lines) + "\n")


def _official_record(rcp_file: Path, batch_size: int, pruned: bool) -> dict | None:
    """The RCP record the official checker compares a submission at ``batch_size`` with."""
    rcp_pass = "pruned_rcps" if pruned else "full_rcps"
    with open(rcp_file) as handle:
        checker = official.RCP_Checker("training", RULESET, BENCH, False, rcp_file=handle)
    exact = checker._find_rcp(batch_size, rcp_pass)
    if exact is not None:
        return exact
    low = checker._find_top_min_rcp(batch_size, rcp_pass)
    high = checker._find_bottom_max_rcp(batch_size, rcp_pass)
    if low is not None and high is not None:
        return checker._create_interp_rcp(batch_size, low, high)[1]
    return checker._find_min_rcp(rcp_pass) if high is not None else None


def _both(
    tmp_path: Path, rcp_file: Path, records: dict, batch_size: int, samples: list, pruned: bool
):
    folder = tmp_path / f"bs{batch_size}_{'pruned' if pruned else 'full'}"
    _write_submission(folder, batch_size, samples)
    logging.disable(logging.WARNING)  # the official checker warns about aborted runs
    try:
        with open(rcp_file) as handle:
            passed, message, norm = official.check_directory(
                str(folder),
                "training",
                RULESET,
                False,
                False,
                rcp_file=handle,
                rcp_pass="pruned_rcps" if pruned else "full_rcps",
            )
    finally:
        logging.disable(logging.NOTSET)
    ours = check_convergence(records, batch_size, samples, pruned=pruned)
    return (passed, message, float(norm)), ours


# (batch size, mean of the submission relative to the RCP it meets, pruned?, expected verdict,
#  expected source)
CASES = [
    pytest.param(32, 1.03, True, PASS, "exact", id="exact-slower-pass"),
    pytest.param(8, 0.99, True, PASS, "exact", id="exact-faster-within-speedup-normalised"),
    pytest.param(8, 0.85, True, FAIL, "exact", id="exact-too-fast-fail"),
    pytest.param(12, 1.0, True, PASS, "interpolated", id="interpolated-pruned"),
    pytest.param(12, 0.8, False, FAIL, "interpolated", id="interpolated-full-fail"),
    pytest.param(16, 1.0, True, PASS, "interpolated", id="pruned-point-is-interpolated"),
    pytest.param(16, 1.0, False, PASS, "exact", id="pruned-point-exact-in-full-set"),
    pytest.param(4, 1.05, True, PASS, "smaller_batch", id="below-pruned-smallest-passes"),
    pytest.param(2, 0.8, True, MISSING, "smaller_batch", id="below-all-too-fast-missing"),
    pytest.param(128, 1.0, True, MISSING, None, id="above-all-missing"),
]


@pytest.mark.parametrize(("batch_size", "relative", "pruned", "verdict", "source"), CASES)
def test_matches_official_checker(
    tmp_path, rcp_file, records, batch_size, relative, pruned, verdict, source
):
    anchor = min(REFERENCE_MEANS, key=lambda bs: abs(bs - batch_size))
    samples = _samples(
        REFERENCE_MEANS[anchor] * relative, RUNS, seed=1000 + batch_size, spread=0.02
    )
    (passed, message, norm), ours = _both(tmp_path, rcp_file, records, batch_size, samples, pruned)

    assert (ours.passed, ours.message, ours.norm_factor) == (passed, message, norm)
    assert (ours.verdict, ours.rcp_source) == (verdict, source)
    theirs = _official_record(rcp_file, batch_size, pruned)
    if theirs is None:
        assert ours.rcp_mean is None
    else:
        assert (ours.rcp_mean, ours.rcp_stdev, ours.max_speedup) == (
            theirs["RCP Mean"],
            theirs["RCP Stdev"],
            theirs["Max Speedup"],
        )
        assert ours.min_allowed_mean == theirs["RCP Mean"] / theirs["Max Speedup"]
    if verdict == PASS and ours.submission_mean < ours.rcp_mean:
        assert ours.norm_factor == ours.rcp_mean / ours.submission_mean > 1.0
    if ours.min_allowed_mean is not None:
        assert ours.min_allowed_mean < ours.rcp_mean


def test_one_aborted_run_is_the_dropped_slowest_two_are_insufficient(tmp_path, rcp_file, records):
    samples = _samples(3700, RUNS, seed=5, spread=0.02)
    one = [None, *samples[1:]]
    (passed, message, norm), ours = _both(tmp_path / "one", rcp_file, records, 32, one, True)
    assert (ours.verdict, ours.passed, ours.message, ours.norm_factor) == (
        PASS,
        passed,
        message,
        norm,
    )

    two = [None, None, *samples[2:]]
    (passed, message, norm), ours = _both(tmp_path / "two", rcp_file, records, 32, two, True)
    assert (passed, message, norm) == (False, "Insufficient convergence", 1.0)
    assert (ours.verdict, ours.passed, ours.message, ours.norm_factor) == (
        INSUFFICIENT,
        False,
        "Insufficient convergence",
        1.0,
    )


def test_record_statistics_equal_the_officials(records, rcp_file):
    with open(rcp_file) as handle:
        checker = official.RCP_Checker("training", RULESET, BENCH, False, rcp_file=handle)
    for name, record in records.items():
        theirs = checker.rcp_data[name]
        assert record["RCP Mean"] == theirs["RCP Mean"]
        assert record["RCP Stdev"] == theirs["RCP Stdev"]
        assert record["Max Speedup"] == theirs["Max Speedup"]
        assert record["Max Speedup"] > 1.0
    # The pruned set: BS 4 (slower than the fastest, BS 8) and BS 16 (above the line) go.
    assert sorted(r["BS"] for r in checker.pruned_rcp_data.values()) == [8, 32, 64]


def test_official_resnet_rcps_on_the_fixture_logs():
    """Real data: the fixture's BS 3200 falls between the 4.0 RCPs at 1632 and 3264."""
    files = sorted(glob.glob(str(FIXTURE_RESNET / "result_*.txt")))
    logging.disable(logging.WARNING)
    try:
        bs, epochs, _ = official.get_submission_epochs(files, RULESET, False)
        passed, message, norm = official.check_directory(
            str(FIXTURE_RESNET), "training", RULESET, False, False, rcp_pass="pruned_rcps"
        )
    finally:
        logging.disable(logging.NOTSET)
    rcp_path = Path(os.path.dirname(official.__file__)) / f"training_{RULESET}" / "rcps_resnet.json"
    # The official reader marks a non-converged run as 1e9 epochs; greenperf says None.
    runs = [None if e == 1e9 else e for e in epochs]

    ours = check_convergence(load_rcp_records(rcp_path), bs, runs, submission_runs=5)

    assert (bs, passed, message) == (3200, True, "RCP Interpolation")
    assert (ours.passed, ours.message, ours.norm_factor) == (passed, message, float(norm))
    assert ours.norm_factor == 1.0042232277526395
    assert ours.rcp_source == "interpolated" and ours.submission_mean == 35.0


def test_min_acceptable_mean():
    assert min_acceptable_mean(100.0, 0.0, 18, 10) == 100.0
    bound = min_acceptable_mean(100.0, 5.0, 18, 10)
    assert 90.0 < bound < 100.0
    # Wider spread, weaker evidence: a lower mean is still acceptable.
    assert min_acceptable_mean(100.0, 10.0, 18, 10) < bound
    # Where float spacing exceeds the 1e-4 tolerance the official bisection never ends.
    huge = min_acceptable_mean(1e12, 5e10, 18, 10)
    assert 0.8e12 < huge < 1e12


def test_bad_records_and_inputs(tmp_path, records):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": {"Benchmark": BENCH, "BS": 8}}))
    with pytest.raises(GreenperfError, match="neither 'samples to converge'"):
        load_rcp_records(bad)
    bad.write_text("{not json")
    with pytest.raises(GreenperfError, match="not valid JSON"):
        load_rcp_records(bad)
    with pytest.raises(GreenperfError, match="needs at least 3"):
        build_rcp_record(BENCH, 8, [100, 200], {}, submission_runs=RUNS)
    with pytest.raises(GreenperfError, match="must be positive"):
        build_rcp_record(BENCH, 8, [100, 0, 200], {}, submission_runs=RUNS)

    mixed = dict(records)
    mixed["other"] = build_rcp_record("mlp", 8, [1, 2, 3], {}, submission_runs=RUNS)
    with pytest.raises(UsageError, match="mix benchmarks"):
        check_convergence(mixed, 8, [3000] * RUNS)
    with pytest.raises(UsageError, match="at least 3"):
        check_convergence(records, 8, [3000, 3000])
    undeclared = {
        name: {k: v for k, v in record.items() if k != "Submission runs"}
        for name, record in records.items()
    }
    with pytest.raises(UsageError, match="pass submission_runs"):
        check_convergence(undeclared, 8, [3000] * RUNS)
