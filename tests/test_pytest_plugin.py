"""The pytest plugin, black-box: a user's test suite run by pytest in a subprocess.

The plugin is found through its ``pytest11`` entry point (``pip install -e .``), exactly as in
a user's project. Baselines are real ``toy`` results made here, one fast and one slowed down
by a sleep in every train step, so a verdict never hangs on the machine's noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from greenperf.progress import Progress
from greenperf.runner import RunRequest, run_workload
from greenperf.workload import get_workload

# ~20 ms per step on top of ~1 ms of work: the slowed toy is many times slower.
SLEEP = "0.02"

USER_TESTS = """
import os

def test_toy_speed(greenperf_run):
    run = greenperf_run("toy", runs=5, threads=1)
    assert run.result.is_file()
    assert run.doc["phases"][0]["score"]["value"] is not None
    if run.comparison is not None:
        print("VERDICTS", sorted({m.verdict for m in run.comparison.metrics}))

def test_slow_toy(greenperf_run, monkeypatch):
    monkeypatch.setenv("GP_TOY_STEP_SLEEP", "{sleep}")
    greenperf_run("toy", runs=5, threads=1)
"""


@pytest.fixture(scope="module")
def baselines(tmp_path_factory) -> dict[str, Path]:
    torch.set_num_threads(1)
    out = {}
    for name, sleep in (("fast", None), ("slow", SLEEP)):
        folder = tmp_path_factory.mktemp(f"baseline-{name}")
        mp = pytest.MonkeyPatch()
        if sleep:
            mp.setenv("GP_TOY_STEP_SLEEP", sleep)
        try:
            out[name] = run_workload(RunRequest(
                workload=get_workload("toy"), scale="tiny", runs=5, out_dir=folder, threads=1,
                check_compliance=False, progress=Progress(enabled=False)))
        finally:
            mp.undo()
    return out


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    from importlib.metadata import entry_points

    if not any(ep.value == "greenperf.pytest_plugin" for ep in entry_points(group="pytest11")):
        pytest.fail("the pytest11 entry point 'greenperf' is not installed: run "
                    "`pip install -e .` after changing pyproject.toml")
    pytester.makepyfile(test_user=USER_TESTS.replace("{sleep}", SLEEP))
    return pytester


def test_a_faster_candidate_passes_and_is_reported(suite, baselines):
    out = suite.path / "results"
    result = suite.runpytest_subprocess(
        "-k", "test_toy_speed", "-s", f"--greenperf-baseline={baselines['slow']}",
        f"--greenperf-out={out}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*VERDICTS*improved*",
        "*= greenperf =*",
        "*test_toy_speed: toy tiny -> *toy_tiny_training.json: no significant regression*",
    ])
    assert json.loads((out / "toy_tiny_training.json").read_text())["workload"] == "toy"


def test_an_injected_slowdown_fails_the_test_with_the_table(suite, baselines):
    result = suite.runpytest_subprocess("-k", "test_slow_toy",
                                        f"--greenperf-baseline={baselines['fast'].parent}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*greenperf: performance regression in toy tiny against*",
        "*workload*phase/scenario*metric*baseline*candidate*change*verdict*",
        "*time to target*REGRESSED*",
        "*REGRESSION: *metric(s) significantly worse than the baseline by more than 5%*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_without_baseline_runs_are_recorded_and_marked(suite):
    result = suite.runpytest_subprocess("-k", "test_toy_speed", "-m", "greenperf")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*toy tiny -> *: recorded (no --greenperf-baseline given)*"])
    deselected = suite.runpytest_subprocess("-k", "test_toy_speed", "-m", "not greenperf")
    deselected.assert_outcomes(deselected=2)


def test_a_missing_baseline_is_a_clear_usage_error(suite, tmp_path):
    missing = tmp_path / "nope.json"
    result = suite.runpytest_subprocess(f"--greenperf-baseline={missing}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--greenperf-baseline {missing}: no such result file or "
                                 "folder*"])
    assert "Traceback" not in result.stderr.str()

    result = suite.runpytest_subprocess("--greenperf-threshold=5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--greenperf-threshold*5*ambiguous*"])


def test_a_baseline_without_the_workload_fails_clearly(suite, tmp_path, baselines):
    other = json.loads(baselines["fast"].read_text())
    other["scale"] = "standard"  # a result for another scale: nothing to compare with
    folder = tmp_path / "other"
    folder.mkdir()
    from greenperf.results import write_result

    write_result(folder / "toy_standard_training.json", other)
    result = suite.runpytest_subprocess("-k", "test_toy_speed",
                                        f"--greenperf-baseline={folder}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot compare with --greenperf-baseline*no result in one "
                                 "matches a result in the other*"])
