"""Scoring MLLOG result folders must give the official result summarizer's numbers, bit for bit."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from greenperf.errors import GreenperfError, UsageError
from greenperf.mlperf_score import infer_ruleset, olympic_average, score_folder

FIXTURE = Path(__file__).parent / "fixtures" / "mlperf_training_v4.0"
SYSTEM = "ESC8000A-E12-8xH100-PCIE-80GB"
RESNET = FIXTURE / "ASUSTeK" / "results" / SYSTEM / "resnet"
# The fixture README: official summarizer, training 4.0.0, fresh copy of the folder.
OFFICIAL_SCORE = 20.743633333333335

# A tiny compliance config standing in for greenperf's generated ruleset.
MINIMAL_CONFIG = """\
- KEY:
    NAME: run_start
    REQ: EXACTLY_ONE
- KEY:
    NAME: run_stop
    REQ: EXACTLY_ONE
    CHECK:
        - "'status' in v['metadata']"
- KEY:
    NAME: eval_accuracy
    REQ: AT_LEAST_ONE
    ATLEAST_ONE_CHECK: "v['value'] >= 0.8"
"""


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def _official_standalone(folder: Path) -> dict:
    """The official summarizer's scoring function, in its own process."""
    code = (
        "import json, sys\n"
        "from mlperf_logging.result_summarizer import result_summarizer as rs\n"
        "track, _, score, _, factor = rs._compute_strong_score_standalone(\n"
        "    'resnet', sys.argv[2], False, sys.argv[1], 'training', '4.0.0',\n"
        "    return_full_scores=True)\n"
        "track = {k.rsplit('/', 1)[-1]: v for k, v in track.items()}\n"
        "print(json.dumps({'track': track, 'score': score, 'factor': factor}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder), SYSTEM],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder.parent,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def _write_run(
    folder: Path, name: str, minutes: float, status: str = "success", accuracy: float = 0.9
) -> None:
    start = 1_700_000_000_000
    lines = [
        "plain output that is not an MLLOG line",
        _mllog(start - 5000, "submission_benchmark", "mlp"),
        _mllog(start, "run_start"),
        _mllog(start + 1000, "eval_accuracy", accuracy, samples_count=4096),
        _mllog(start + round(minutes * 60_000), "run_stop", status=status),
    ]
    (folder / name).write_text("\n".join(lines) + "\n")


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "greenperf_ruleset.yaml"
    path.write_text(MINIMAL_CONFIG)
    return path


def test_fixture_score_is_the_official_score_to_the_last_bit():
    score = score_folder(RESNET)

    assert score.ruleset == "4.0.0"  # read from the path: mlperf_training_v4.0
    assert score.benchmark == "resnet"
    assert score.score_minutes == OFFICIAL_SCORE
    assert score.reason is None
    by_file = {run.file: run for run in score.runs}
    assert [run.file for run in score.runs] == [f"result_{i}.txt" for i in range(1, 6)]
    aborted = by_file["result_3.txt"]
    assert (aborted.status, aborted.compliance_ok, aborted.converged) == ("aborted", False, False)
    assert any("eval_accuracy" in msg for msg in aborted.compliance_messages)
    for name in ("result_1.txt", "result_2.txt", "result_4.txt", "result_5.txt"):
        run = by_file[name]
        assert run.converged and run.compliance_ok and run.status == "success"
        assert run.minutes == (run.run_stop_ms - run.run_start_ms) / 60 / 1000
    # The fastest converged run (result_2) is dropped; the aborted one stands for the slowest.
    assert set(score.counted_files) == {"result_1.txt", "result_4.txt", "result_5.txt"}
    assert score.dropped_runs == 1
    assert json.loads(json.dumps(score.to_dict()))["score_minutes"] == OFFICIAL_SCORE


def test_scoring_never_writes_into_the_folder_and_repeats_exactly():
    before = _snapshot(RESNET)
    first = score_folder(RESNET, ruleset="4.0.0", benchmark="resnet")
    second = score_folder(RESNET, ruleset="4.0.0", benchmark="resnet")
    assert _snapshot(RESNET) == before
    assert first.to_dict() == second.to_dict()


def test_equals_the_official_summarizer_run_on_a_copy(tmp_path: Path):
    org = tmp_path / "ASUSTeK"
    shutil.copytree(FIXTURE / "ASUSTeK", org)
    copy = org / "results" / SYSTEM / "resnet"

    official = _official_standalone(copy)
    ours = score_folder(copy, ruleset="4.0.0")
    assert ours.score_minutes == official["score"] == OFFICIAL_SCORE
    assert {r.file: r.minutes for r in ours.runs if r.converged} == official["track"]

    # The official command line then runs its RCP pass, which writes scaling.json into the
    # folder; its next score differs. greenperf honours the file as the summarizer does.
    done = subprocess.run(
        [sys.executable, "-m", "mlperf_logging.result_summarizer", str(org), "training", "4.0.0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (copy / "scaling.json").is_file()
    rescored = _official_standalone(copy)
    assert rescored["score"] != official["score"]
    ours_again = score_folder(copy, ruleset="4.0.0")
    assert ours_again.scaling_factor == rescored["factor"]
    assert ours_again.score_minutes == rescored["score"]


def test_olympic_average_matches_the_official_function():
    from mlperf_logging.result_summarizer.result_summarizer import _compute_olympic_average

    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(3, 12)
        scores = [rng.uniform(1.0, 100.0) for _ in range(n)]
        max_dropped = rng.choice([1, 4])
        dropped = rng.randint(0, max_dropped)
        expected = _compute_olympic_average(list(scores), dropped, max_dropped)
        assert olympic_average(scores, dropped, max_dropped) == expected
    assert olympic_average([5.0, 1.0, 3.0, 2.0, 4.0], 0, 1) == 3.0
    assert olympic_average([5.0, 1.0], 0, 1) is None


def test_own_ruleset_and_aborted_runs(tmp_path: Path, config_file: Path):
    folder = tmp_path / "mlp"
    folder.mkdir()
    for i, minutes in enumerate([1.0, 2.0, 3.0, 4.0, 10.0], start=1):
        _write_run(
            folder, f"result_{i}.txt", minutes, status="aborted" if minutes == 2.0 else "success"
        )

    score = score_folder(folder, ruleset="4.0.0", config=config_file)

    assert score.benchmark == "mlp"
    assert all(run.compliance_ok for run in score.runs)
    aborted = next(run for run in score.runs if run.status == "aborted")
    assert not aborted.converged and "aborted" in aborted.drop_reason
    # Converged 1, 3, 4, 10; the aborted run stands for the slowest, so only 1 is cut.
    assert score.score_minutes == (3.0 + 4.0 + 10.0) * 1.0 / 3


def test_a_run_failing_compliance_is_dropped_even_with_status_success(
    tmp_path: Path, config_file: Path
):
    folder = tmp_path / "mlp"
    folder.mkdir()
    for i, minutes in enumerate([1.0, 2.0, 3.0, 4.0, 10.0], start=1):
        _write_run(folder, f"result_{i}.txt", minutes, accuracy=0.5 if i == 2 else 0.9)

    score = score_folder(folder, ruleset="4.0.0", config=config_file)

    low = next(run for run in score.runs if run.file == "result_2.txt")
    assert (low.status, low.compliance_ok, low.converged) == ("success", False, False)
    assert any("eval_accuracy" in msg for msg in low.compliance_messages)
    assert score.score_minutes == (3.0 + 4.0 + 10.0) * 1.0 / 3


def test_two_non_converged_runs_give_no_score(tmp_path: Path, config_file: Path):
    folder = tmp_path / "mlp"
    folder.mkdir()
    for i, minutes in enumerate([1.0, 2.0, 3.0, 4.0, 5.0], start=1):
        _write_run(folder, f"result_{i}.txt", minutes, status="aborted" if i > 3 else "success")

    score = score_folder(folder, ruleset="4.0.0", config=config_file)

    assert score.score_minutes is None
    assert "too many non-converged runs: 2" in score.reason
    assert "result_4.txt" in score.reason and "result_5.txt" in score.reason


def test_a_run_without_run_stop_fails_compliance_and_is_dropped(tmp_path: Path, config_file: Path):
    folder = tmp_path / "mlp"
    folder.mkdir()
    for i, minutes in enumerate([1.0, 2.0, 3.0, 4.0], start=1):
        _write_run(folder, f"result_{i}.txt", minutes)
    crashed = folder / "result_5.txt"
    _write_run(folder, crashed.name, 5.0)
    crashed.write_text("".join(crashed.read_text().splitlines(True)[:-1]))

    score = score_folder(folder, ruleset="4.0.0", config=config_file)

    run = next(r for r in score.runs if r.file == "result_5.txt")
    assert (run.minutes, run.status, run.compliance_ok) == (None, "incomplete", False)
    assert any("run_stop" in msg for msg in run.compliance_messages)
    assert score.score_minutes == (2.0 + 3.0 + 4.0) * 1.0 / 3


def test_bad_input_names_the_file(tmp_path: Path, config_file: Path):
    with pytest.raises(GreenperfError, match="result folder not found"):
        score_folder(tmp_path / "nowhere", ruleset="4.0.0")
    with pytest.raises(GreenperfError, match=r"no result_\*\.txt files"):
        score_folder(tmp_path, ruleset="4.0.0")

    (tmp_path / "result_1.txt").write_text("just some text\n")
    with pytest.raises(GreenperfError, match=r"result_1\.txt: no parseable ':::MLLOG' line"):
        score_folder(tmp_path, ruleset="4.0.0")

    # A line without time_ms is skipped (as the official parser means to); with no other line
    # the file is not a log at all.
    (tmp_path / "result_1.txt").write_text(':::MLLOG {"key": "run_start", "value": null}\n')
    with pytest.raises(GreenperfError, match=r"result_1\.txt: no parseable ':::MLLOG' line"):
        score_folder(tmp_path, ruleset="4.0.0")


def test_ruleset_must_be_known(tmp_path: Path):
    _write_run(tmp_path, "result_1.txt", 1.0)
    with pytest.raises(UsageError, match="cannot tell which training ruleset"):
        score_folder(tmp_path)
    with pytest.raises(UsageError, match="'9.9.9' is not one of"):
        score_folder(tmp_path, ruleset="9.9.9")
    assert infer_ruleset(tmp_path / "training_results_v4.1" / "X" / "results") == "4.1.0"
    assert infer_ruleset(tmp_path / "hpc_results_v3.0", usage="training") is None
