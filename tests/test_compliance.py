"""greenperf's generated ruleset, judged by the official mlperf-logging checker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from greenperf import compliance
from greenperf.compliance import RulesetSpec, check_logs, generate_ruleset


@pytest.fixture(scope="module")
def toy_log(tmp_path_factory) -> tuple[Path, RulesetSpec]:
    """A real MLLOG log from a real (toy) training run."""
    from greenperf.progress import Progress
    from greenperf.runner import RunRequest, run_workload
    from greenperf.training import ruleset_spec
    from greenperf.workload import get_workload

    out = tmp_path_factory.mktemp("toy")
    workload = get_workload("toy")
    run_workload(RunRequest(workload=workload, scale="tiny", runs=1, out_dir=out,
                            check_compliance=False, progress=Progress(enabled=False)))
    phase = workload.phases()[0]
    recipe = phase.recipe("tiny")
    return out / "logs" / "toy_tiny" / "train" / "result_1.txt", ruleset_spec(
        workload, phase, recipe, recipe)


def _official(log: Path, spec: RulesetSpec, version: str, tmp: Path) -> subprocess.CompletedProcess:
    common = generate_ruleset(spec, version, tmp / f"rules-{version}")
    return subprocess.run(
        [sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
         "--ruleset", version, "--config", str(common.resolve()), "--log_output",
         str(tmp / "cc.log"), str(log)], capture_output=True, text=True, cwd=tmp)


def _rewrite(log: Path, dest: Path, edit) -> Path:
    lines = log.read_text().splitlines()
    out = []
    for line in lines:
        record = json.loads(line.split(" ", 1)[1])
        new = edit(record)
        if new is not None:
            out.append(":::MLLOG " + json.dumps(new))
    dest.write_text("\n".join(out) + "\n")
    return dest


def test_ruleset_is_generated_from_the_installed_package(tmp_path):
    versions = compliance.installed_rulesets()
    assert "6.0.0" in versions
    assert compliance.rulesets_to_check() == list(dict.fromkeys(["6.0.0", versions[-1]]))
    spec = RulesetSpec("toy", 0.9, 32, 0.05, "linear", {"opt_name": "sgd"})
    common = generate_ruleset(spec, "6.0.0", tmp_path)
    text = common.read_text()
    # every official key is still there, with the target added to eval_accuracy
    from importlib import resources

    import yaml
    official_file = resources.files("mlperf_logging.compliance_checker").joinpath(
        "training_6.0.0", "common.yaml")
    official = yaml.load(official_file.read_text(), Loader=yaml.BaseLoader)
    ours = yaml.load(text, Loader=yaml.BaseLoader)
    official_names = [r["KEY"]["NAME"] for r in official if "KEY" in r]
    assert [r["KEY"]["NAME"] for r in ours if "KEY" in r] == official_names
    accuracy = next(r["KEY"] for r in ours if r.get("KEY", {}).get("NAME") == "eval_accuracy")
    assert accuracy["ATLEAST_ONE_CHECK"] == "v['value'] >= 0.9"
    bench = (tmp_path / "closed_toy.yaml").read_text()
    assert "eval_accuracy" not in bench and "run_stop" not in bench  # no common key redefined


@pytest.mark.parametrize("version", ["6.0.0", compliance.installed_rulesets()[-1]])
def test_real_log_passes_the_official_checker(toy_log, tmp_path, version):
    log, spec = toy_log
    proc = _official(log, spec, version, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_log_without_run_stop_fails(toy_log, tmp_path):
    log, spec = toy_log
    broken = _rewrite(log, tmp_path / "no_stop.txt",
                      lambda r: None if r["key"] == "run_stop" else r)
    (finding,) = check_logs([(broken, spec)], versions=["6.0.0"])
    assert not finding.passed
    assert any("run_stop" in m for m in finding.messages), finding.messages


def test_log_below_target_fails(toy_log, tmp_path):
    log, spec = toy_log

    def lower(record):
        if record["key"] == "eval_accuracy":
            record["value"] = spec.target - 0.2
        return record

    broken = _rewrite(log, tmp_path / "low.txt", lower)
    (finding,) = check_logs([(broken, spec)], versions=["6.0.0"])
    assert not finding.passed
    assert any("eval_accuracy" in m for m in finding.messages), finding.messages


def test_log_without_seed_fails(toy_log, tmp_path):
    log, spec = toy_log
    broken = _rewrite(log, tmp_path / "noseed.txt", lambda r: None if r["key"] == "seed" else r)
    (finding,) = check_logs([(broken, spec)], versions=["6.0.0"])
    assert not finding.passed
    assert any("'seed'" in m for m in finding.messages), finding.messages


def test_closed_log_with_changed_hyperparameter_fails(toy_log, tmp_path):
    log, spec = toy_log

    def tweak(record):
        if record["key"] == "opt_name":
            record["value"] = "adam"
        return record

    broken = _rewrite(log, tmp_path / "tweaked.txt", tweak)
    (finding,) = check_logs([(broken, spec)], versions=["6.0.0"])
    assert not finding.passed


def test_default_official_ruleset_rejects_unknown_benchmark(toy_log, tmp_path):
    # Sanity check that the official checker is really judging: its own rules
    # do not know greenperf's benchmarks.
    log, _ = toy_log
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage",
                           "training", "--ruleset", "6.0.0", "--log_output",
                           str(tmp_path / "cc.log"), str(log)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode != 0
