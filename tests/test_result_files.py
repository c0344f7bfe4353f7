"""Result files: schema, canonical checksum, and ``greenperf check`` on damaged files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from greenperf.results import compute_checksum, read_result, schema_problems, write_result


@pytest.fixture(scope="module")
def toy_result(tmp_path_factory) -> Path:
    from greenperf.progress import Progress
    from greenperf.runner import RunRequest, run_workload
    from greenperf.workload import get_workload

    out = tmp_path_factory.mktemp("res")
    return run_workload(RunRequest(workload=get_workload("toy"), scale="tiny", runs=3,
                                   out_dir=out, progress=Progress(enabled=False)))


def _copy(src: Path, dest_dir: Path, text: str | None = None) -> Path:
    """Copy a result (and its logs, which it references relatively) into dest_dir."""
    import shutil

    shutil.copytree(src.parent, dest_dir, dirs_exist_ok=True)
    dest = dest_dir / src.name
    if text is not None:
        dest.write_text(text)
    return dest


def test_written_result_validates_and_checksum_matches(toy_result):
    doc = read_result(toy_result)
    assert doc["checksum"]["value"] == compute_checksum(doc)
    assert schema_problems(doc) == []
    assert len(doc["config_hash"]) == 64


def test_flipping_one_digit_fails_check_with_clear_message(toy_result, tmp_path, run_cli):
    text = toy_result.read_text()
    m = re.search(r'"samples_seen": (\d)', text)
    flipped = text[:m.start(1)] + str((int(m.group(1)) + 1) % 10) + text[m.end(1):]
    path = _copy(toy_result, tmp_path, flipped)
    proc = run_cli("check", str(path), "--no-compliance")
    assert proc.returncode == 1
    assert "field checksum" in proc.stdout and "edited" in proc.stdout


def test_check_accepts_the_untouched_copy(toy_result, tmp_path, run_cli):
    path = _copy(toy_result, tmp_path)
    proc = run_cli("check", str(path))
    assert proc.returncode == 0, proc.stdout


def test_edited_log_is_detected(toy_result, tmp_path, run_cli):
    path = _copy(toy_result, tmp_path)
    log = tmp_path / json.loads(path.read_text())["phases"][0]["runs"][0]["log"]["path"]
    log.write_text(log.read_text().replace('"value": 0', '"value": 1', 1))
    proc = run_cli("check", str(path), "--no-compliance")
    assert proc.returncode == 1 and "changed after the run" in proc.stdout


def test_newer_schema_version_is_refused(toy_result, tmp_path, run_cli):
    doc = json.loads(toy_result.read_text())
    doc["schema_version"] = "9.0"
    path = tmp_path / "new.json"
    write_result(path, doc)
    proc = run_cli("check", str(path))
    assert proc.returncode == 1
    assert "field schema_version: 9.0 is newer" in proc.stdout


def test_corrupted_json_is_one_finding(tmp_path, run_cli):
    path = tmp_path / "broken.json"
    path.write_text('{"schema_version": "1.0", "kind": ')
    proc = run_cli("check", str(path))
    assert proc.returncode == 1
    assert "broken.json: not valid JSON (line 1" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_schema_violation_names_the_field(toy_result, tmp_path, run_cli):
    doc = json.loads(toy_result.read_text())
    doc["phases"][0]["runs"][0]["status"] = "great"
    path = tmp_path / "bad.json"
    write_result(path, doc)
    proc = run_cli("check", str(path))
    assert proc.returncode == 1
    assert "field phases[0].runs[0].status" in proc.stdout


def test_tampered_score_is_caught_even_when_resealed(toy_result, tmp_path, run_cli):
    path = _copy(toy_result, tmp_path)
    doc = json.loads(path.read_text())
    doc["phases"][0]["score"]["value"] = 0.001
    write_result(path, doc)  # a forger recomputes the checksum...
    proc = run_cli("check", str(path), "--no-compliance")
    assert proc.returncode == 1  # ...but the score no longer follows from the runs
    assert "score.value" in proc.stdout


def test_missing_file_is_a_usage_error(run_cli, tmp_path):
    proc = run_cli("check", str(tmp_path / "nope.json"))
    assert proc.returncode == 2
    assert_one_line_error(proc, "nope.json", "no such file")
