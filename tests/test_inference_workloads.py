"""All three workloads under the real LoadGen, serving the reference models greenperf ships.

The models are the checkpoints of the reference runs in reference_results/: the
"checkpoint path in a result" way of choosing what to serve.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import greenperf
from greenperf.serving import infer, model_from_result
from greenperf.workload import get_workload

REFERENCE = Path(__file__).parents[1] / "reference_results" / "ci-2c-x86-cpu"
WORKLOADS = ["mlp", "resnet", "bert_small"]
SCENARIOS = ["offline", "singlestream", "multistream", "server"]


@pytest.fixture(scope="module", params=WORKLOADS)
def served(request):
    result = REFERENCE / f"{request.param}_tiny_training.json"
    return model_from_result(result, get_workload(request.param), "cpu")


def _runs(paths):
    return [r for p in paths for r in json.loads(p.read_text())["inference"]["results"]]


def test_all_four_scenarios_are_valid_with_quick_settings(served, tmp_path):
    paths = infer(served, SCENARIOS, ["performance"], tmp_path)
    runs = _runs(paths)
    assert [r["scenario"] for r in runs] == ["Offline", "SingleStream", "MultiStream", "Server"]
    for run in runs:
        assert run["loadgen_verdict"] == "VALID", (run["scenario"], run["invalid_reasons"])
        assert run["valid"]
        assert run["metric_value"] and run["metric_value"] > 0
        assert (tmp_path / run["logs"]["detail"]).is_file()
    server = runs[-1]
    assert server["metric_name"] and server["server_trials"]


def test_accuracy_mode_passes_the_gate(served, tmp_path):
    (run,) = _runs(infer(served, ["offline"], ["accuracy"], tmp_path))
    assert run["valid"], run["invalid_reasons"]
    accuracy = run["accuracy"]
    assert accuracy["passed"]
    assert accuracy["quality"] >= 0.99 * served.reference_quality
    assert accuracy["samples_scored"] == accuracy["samples_expected"]


def test_zeroed_weights_fail_the_gate(served, tmp_path):
    broken = copy.copy(served)
    broken.model = copy.deepcopy(served.model)
    for param in broken.model.parameters():
        param.data.zero_()
    (run,) = _runs(infer(broken, ["offline"], ["accuracy"], tmp_path))
    assert not run["accuracy"]["passed"]
    assert not run["valid"]


def test_infer_cli_from_result_and_check(tmp_path):
    proc = greenperf("infer", "mlp", "--from-result", str(REFERENCE / "mlp_tiny_training.json"),
                     "--scenario", "offline", "--scenario", "singlestream", "--out",
                     str(tmp_path), "--json", "--quiet", timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {(r["scenario"], r["mode"]) for r in rows} == {
        ("Offline", "performance"), ("Offline", "accuracy"),
        ("SingleStream", "performance"), ("SingleStream", "accuracy")}
    assert all(r["verdict"] == "VALID" for r in rows)
    for name in ("Offline", "SingleStream"):
        path = tmp_path / f"mlp_tiny_inference_{name}.json"
        doc = json.loads(path.read_text())
        assert doc["kind"] == "inference"
        assert doc["sustainability"] is not None
        check = greenperf("check", str(path))
        assert check.returncode == 0, check.stdout
