"""``greenperf score``: official log folders scored like the official summarizer; greenperf's own
log folders checked with greenperf's generated ruleset. The folder is never written to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, greenperf
from greenperf.progress import Progress
from greenperf.runner import RunRequest, run_workload
from greenperf.workload import get_workload

RESNET = (Path(__file__).parent / "fixtures" / "mlperf_training_v4.0" / "ASUSTeK" / "results"
          / "ESC8000A-E12-8xH100-PCIE-80GB" / "resnet")
OFFICIAL_SCORE = 20.743633333333335  # the official summarizer on this folder (fixture README)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_official_folder_scores_exactly_and_stays_untouched():
    before = _snapshot(RESNET)
    proc = greenperf("score", str(RESNET), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["score_minutes"] == OFFICIAL_SCORE
    assert report["score_seconds"] == OFFICIAL_SCORE * 60
    assert report["ruleset"] == "4.0.0" and report["benchmark"] == "resnet"
    runs = {r["file"]: r for r in report["runs"]}
    assert runs["result_3.txt"]["compliance_ok"] is False
    assert runs["result_3.txt"]["status"] == "aborted"
    assert sorted(report["counted_files"]) == ["result_1.txt", "result_4.txt", "result_5.txt"]
    assert "official training 4.0.0" in report["rules"]

    text = greenperf("score", str(RESNET))
    assert text.returncode == 0
    assert f"score: {OFFICIAL_SCORE!r} minutes (olympic average of 3 runs)" in text.stdout
    assert "result_3.txt  21.9306" in text.stdout
    assert _snapshot(RESNET) == before


@pytest.fixture(scope="module")
def toy_logs(tmp_path_factory) -> tuple[Path, dict]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("toy")
    path = run_workload(RunRequest(workload=get_workload("toy"), scale="tiny", runs=5,
                                   out_dir=out, threads=1, check_compliance=False,
                                   progress=Progress(enabled=False)))
    return out / "logs" / "toy_tiny" / "train", json.loads(path.read_text())


def test_greenperf_logs_use_greenperfs_ruleset(toy_logs):
    logs, doc = toy_logs
    proc = greenperf("score", str(logs), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert "greenperf's generated ruleset for toy/train (tiny)" in report["rules"]
    assert report["benchmark"] == "toy"
    assert all(r["compliance_ok"] for r in report["runs"]), report["runs"]
    # Log timestamps are whole milliseconds; the result file times with perf_counter.
    assert report["score_seconds"] == pytest.approx(doc["phases"][0]["score"]["value"],
                                                    abs=0.005)


def test_greenperfs_ruleset_is_really_applied(toy_logs, tmp_path):
    logs, _ = toy_logs
    folder = tmp_path / "train"
    shutil.copytree(logs, folder)
    log = folder / "result_2.txt"
    text = log.read_text()
    # A learning rate off the closed-division scaling rule.
    edited = text.replace('"key": "opt_base_learning_rate", "value": 0.05',
                          '"key": "opt_base_learning_rate", "value": 0.07')
    assert edited != text
    log.write_text(edited)
    report = json.loads(greenperf("score", str(folder), "--json").stdout)
    runs = {r["file"]: r for r in report["runs"]}
    assert runs["result_2.txt"]["compliance_ok"] is False
    assert any("opt_base_learning_rate" in m for m in runs["result_2.txt"]["compliance_messages"])
    assert "result_2.txt" not in report["counted_files"]
    assert all(runs[f"result_{i}.txt"]["compliance_ok"] for i in (1, 3, 4, 5))


def test_usage_errors(tmp_path):
    proc = greenperf("score", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert_one_line_error(proc, "nope", "no such folder")

    # Without the version in the path, the ruleset must be given.
    bare = tmp_path / "resnet"
    shutil.copytree(RESNET, bare)
    proc = greenperf("score", str(bare))
    assert proc.returncode == 2
    assert_one_line_error(proc, "cannot tell which training ruleset")
    proc = greenperf("score", str(bare), "--ruleset", "9.9.9")
    assert proc.returncode == 2
    assert_one_line_error(proc, "'9.9.9' is not one of")
