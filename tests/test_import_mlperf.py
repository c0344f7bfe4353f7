"""``greenperf import-mlperf``: official MLPerf Training results as greenperf result files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, greenperf
from greenperf.checker import check_result
from greenperf.results import file_sha256, read_result, write_result

ORG = Path(__file__).parent / "fixtures" / "mlperf_training_v4.0" / "ASUSTeK"
SYSTEM = "ESC8000A-E12-8xH100-PCIE-80GB"
RESNET = ORG / "results" / SYSTEM / "resnet"
OFFICIAL_SCORE = 20.743633333333335


def _mllog_lines(path: Path, key: str) -> list[dict]:
    out = []
    for line in path.read_text(encoding="latin-1").splitlines():
        if ":::MLLOG " in line:
            record = json.loads(line.split(":::MLLOG ", 1)[1])
            if record["key"] == key:
                out.append(record)
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imported")
    proc = greenperf("import-mlperf", str(ORG), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert len(summary) == 1
    path = Path(summary[0]["result"])
    assert path == out / SYSTEM / "resnet_official_training.json"
    return path


def test_the_imported_result_is_a_sealed_schema_result(imported):
    doc = read_result(imported)  # schema 1.0
    assert doc["origin"] == "imported-mlperf"
    assert doc["imported"]["official_score_minutes"] == OFFICIAL_SCORE
    assert (doc["workload"], doc["scale"], doc["division"]) == ("resnet", "official", "closed")
    score = doc["phases"][0]["score"]
    assert score["official_minutes"] == OFFICIAL_SCORE
    assert score["value"] == OFFICIAL_SCORE * 60 and score["unit"] == "s"
    assert score["dropped_runs"] == [2, 3]
    declared = doc["system"]["declared"]
    assert declared["submitter"] == "ASUSTeK"
    assert declared["accelerator_model_name"] == "NVIDIA H100-PCIe-80GB"
    assert doc["system"]["name"] == SYSTEM
    assert doc["system"]["declared_source"].endswith(f"systems/{SYSTEM}.json")


def test_runs_come_from_the_logs(imported):
    doc = read_result(imported)
    phase = doc["phases"][0]
    assert phase["target"] == 0.759  # closed_resnet.yaml of training 4.0.0
    assert phase["recipe"]["batch_size"] == 3200
    runs = phase["runs"]
    assert [r["index"] for r in runs] == [1, 2, 3, 4, 5]
    for i, run in enumerate(runs, start=1):
        source = RESNET / f"result_{i}.txt"
        start = _mllog_lines(source, "run_start")[0]["time_ms"]
        stop = _mllog_lines(source, "run_stop")[0]
        assert run["seed"] == _mllog_lines(source, "seed")[0]["value"]
        assert run["tta_seconds"] == (stop["time_ms"] - start) / 1000.0
        assert run["status"] == stop["metadata"]["status"]
        evals = _mllog_lines(source, "eval_accuracy")
        assert [p["metric"] for p in run["eval_curve"]] == [e["value"] for e in evals]
        assert [p["epoch"] for p in run["eval_curve"]] == [e["metadata"]["epoch_num"]
                                                           for e in evals]
        train_samples = _mllog_lines(source, "train_samples")[0]["value"]
        assert run["eval_curve"][-1]["samples"] == evals[-1]["metadata"]["epoch_num"] * \
            train_samples
        assert run["energy"] is None and "energy" in run["not_measured"]
        copied = imported.parent / run["log"]["path"]
        assert copied.read_bytes() == source.read_bytes()
        assert run["log"]["sha256"] == file_sha256(copied)
    run3 = runs[2]
    assert run3["status"] == "aborted" and run3["samples_to_target"] is None
    run1 = runs[0]
    assert run1["samples_to_target"] == run1["eval_curve"][-1]["samples"]
    assert run1["eval_curve"][-1]["metric"] >= 0.759 > run1["eval_curve"][-2]["metric"]
    findings = {f["run"]: f for f in doc["compliance"]["findings"]}
    assert [findings[i]["passed"] for i in range(1, 6)] == [True, True, False, True, True]
    assert findings[3]["messages"]


def test_check_accepts_the_imported_result(imported):
    proc = greenperf("check", str(imported.parent))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK ")
    assert "not installed" not in proc.stdout


def test_check_still_catches_edits(imported, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(imported.parent, copy)
    result = copy / imported.name
    log = copy / read_result(result)["phases"][0]["runs"][0]["log"]["path"]
    log.write_text(log.read_text(encoding="latin-1") + "\n", encoding="latin-1")
    report = check_result(result, run_compliance=False)
    assert any("was changed after the run" in e for e in report.errors), report.errors

    doc = json.loads(result.read_text())
    doc["phases"][0]["score"]["value"] *= 0.9  # a better score than the official one
    write_result(result, doc)  # re-sealed: only the score rule can catch it
    report = check_result(result, run_compliance=False)
    assert any("is not the official score" in e for e in report.errors), report.errors


def test_a_bare_benchmark_folder_with_ruleset(tmp_path):
    bare = tmp_path / "resnet"
    shutil.copytree(RESNET, bare)
    proc = greenperf("import-mlperf", str(bare), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert_one_line_error(proc, "cannot tell which training ruleset")

    proc = greenperf("import-mlperf", str(bare), "-o", str(tmp_path / "out"), "--ruleset",
                     "4.0.0", "--json")
    assert proc.returncode == 0, proc.stderr
    [summary] = json.loads(proc.stdout)
    doc = read_result(Path(summary["result"]))
    # No systems JSON beside a bare folder: the folder above names the system.
    assert doc["system"]["name"] == tmp_path.name and doc["system"]["declared"] == {}
    assert doc["phases"][0]["score"]["official_minutes"] == OFFICIAL_SCORE
    assert not (bare / "scaling.json").exists()


def test_a_folder_without_logs_is_a_usage_error(tmp_path):
    proc = greenperf("import-mlperf", str(tmp_path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert_one_line_error(proc, "no result_*.txt logs")
