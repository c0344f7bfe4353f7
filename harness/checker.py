"""``greenperf check``: schema, checksum, run rules and MLLOG compliance of a result."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenperf import compliance
from greenperf.errors import GreenperfError
from greenperf.results import checksum_problem, file_sha256, read_result
from greenperf.runner import score_phase
from greenperf.training import ruleset_spec
from greenperf.workload import Recipe, available_workloads


@dataclass
class CheckReport:
    path: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "errors": self.errors,
                "warnings": self.warnings, "notes": self.notes}


def check_result(path: Path, run_compliance: bool = True, submission: bool = False,
                 against: Path | None = None) -> CheckReport:
    """Every finding about one result file; never raises for a bad file.

    ``against``: a reference folder (``reference_results/``) for the RCP convergence check
    and the speed comparison with reference systems (``greenperf.references``).
    """
    report = CheckReport(str(path))
    try:
        doc = read_result(path)
    except GreenperfError as exc:
        report.errors.append(str(exc))
        return report
    problem = checksum_problem(doc)
    if problem:
        report.errors.append(f"{path}: {problem}")
    if doc["status"] != "complete":
        report.errors.append(f"{path}: field status: result is incomplete "
                             f"({doc.get('status_reason') or 'no reason recorded'})")
    if doc["kind"] == "training":
        _check_training(doc, path, report, run_compliance, submission)
    else:
        _check_inference(doc, path, report)
    if against is not None:
        _check_against(doc, path, against, report, submission)
    return report


def _check_against(doc: dict[str, Any], path: Path, against: Path, report: CheckReport,
                   submission: bool) -> None:
    from greenperf.references import check_against

    try:
        found = check_against(doc, path, against, submission)
    except GreenperfError as exc:
        report.errors.append(f"--against {against}: {exc}")
        return
    report.errors.extend(found.errors)
    report.warnings.extend(found.warnings)
    report.notes.extend(found.notes)


def _check_training(doc: dict[str, Any], path: Path, report: CheckReport, run_compliance: bool,
                    submission: bool) -> None:
    # An imported MLPerf result may share a name with a greenperf workload (resnet) but
    # follows the official recipe, not greenperf's: no run rule needing the recipe applies.
    workload = (available_workloads().get(doc["workload"]) if doc["origin"] == "greenperf"
                else None)
    if workload is None and doc["origin"] == "greenperf":
        report.warnings.append(f"workload {doc['workload']!r} is not installed here: "
                               "run rules that need its reference recipe were skipped")
    phases = {p.name: p for p in workload.phases()} if workload else {}
    checkpoint = doc.get("checkpoint")
    if checkpoint:
        file = path.parent / checkpoint["path"]
        if not file.is_file():
            report.warnings.append(f"{path}: field checkpoint.path: {file} is missing "
                                   "(greenperf infer --from-result cannot use it)")
        elif file_sha256(file) != checkpoint["sha256"]:
            report.errors.append(f"{path}: field checkpoint.sha256: {file} was changed after "
                                 "the run")
    for i, phase_doc in enumerate(doc["phases"]):
        where = f"{path}: field phases[{i}]"
        runs = phase_doc["runs"]
        seeds = [r["seed"] for r in runs]
        if len(set(seeds)) != len(seeds):
            report.errors.append(f"{where}.runs: seeds are not distinct ({seeds})")
        indices = [r["index"] for r in runs]
        if indices != list(range(1, len(runs) + 1)):
            report.errors.append(f"{where}.runs: run indices are not 1..{len(runs)}")
        needed = workload.submission_runs if workload else 5
        if len(runs) < needed:
            message = (f"{where}.runs: {len(runs)} run(s); a submission needs at least "
                       f"{needed}")
            (report.errors if submission else report.warnings).append(message)
        stored = phase_doc["score"]
        recomputed = score_phase(runs).to_dict()
        if doc["origin"] == "imported-mlperf":
            _check_imported_score(stored, f"{where}.score", report)
        elif stored.get("value") != recomputed["value"]:
            report.errors.append(f"{where}.score.value: {stored.get('value')} does not match the "
                                 f"score recomputed from the runs ({recomputed['value']})")
        for run in runs:
            _check_run(run, phase_doc, f"{where}.runs[{run['index'] - 1}]", report)
        for run in runs:
            _check_log(run, path.parent, f"{where}.runs[{run['index'] - 1}].log", report)
        phase = phases.get(phase_doc["name"])
        if phase is not None and doc["division"] == "closed":
            data_dir = doc["config"].get("data_dir")
            reference = phase.recipe(doc["scale"], Path(data_dir) if data_dir else None)
            _check_closed_recipe(phase_doc["recipe"], reference, f"{where}.recipe", report)
        if run_compliance and phase is not None:
            _check_compliance(doc, phase_doc, workload, phase, path, report)


def _check_imported_score(stored: dict[str, Any], where: str, report: CheckReport) -> None:
    """An imported score is the official summarizer's olympic average (minutes, x 60).

    The official rule also drops runs that fail its compliance checker, which the run
    records here cannot replay, so the stored official minutes are the reference.
    """
    minutes = stored.get("official_minutes")
    value = stored.get("value")
    if minutes is None:
        if value is not None:
            report.errors.append(f"{where}.official_minutes: missing for an imported score")
        return
    if value != minutes * 60:
        report.errors.append(f"{where}.value: {value} is not the official score "
                             f"{minutes} min x 60 s")


def _check_inference(doc: dict[str, Any], path: Path, report: CheckReport) -> None:
    """LoadGen's own verdict per run, the accuracy gate, and the LoadGen logs on disk."""
    section = doc.get("inference")
    if not isinstance(section, dict) or not section.get("results"):
        report.errors.append(f"{path}: field inference: an inference result has no LoadGen runs")
        return
    for i, run in enumerate(section["results"]):
        where = f"{path}: field inference.results[{i}] ({run.get('scenario')} {run.get('mode')})"
        if run.get("loadgen_verdict") not in ("VALID", None) or not run.get("valid"):
            reasons = "; ".join(run.get("invalid_reasons") or []) or "no reason recorded"
            report.errors.append(f"{where}: INVALID ({reasons})")
        accuracy = run.get("accuracy")
        if run.get("mode") == "accuracy" and accuracy and not accuracy.get("passed", True):
            report.errors.append(f"{where}: accuracy gate failed: quality "
                                 f"{accuracy.get('quality')} < {accuracy.get('threshold')}")
        for name, rel in (run.get("logs") or {}).items():
            log = path.parent / rel
            if name in ("summary", "detail") and not log.is_file():
                report.warnings.append(f"{where}.logs.{name}: {log} is missing")


def _check_run(run: dict[str, Any], phase_doc: dict[str, Any], where: str,
               report: CheckReport) -> None:
    target = phase_doc["target"]
    curve = run["eval_curve"]
    reached = [p for p in curve if p["metric"] is not None and p["metric"] >= target]
    if run["status"] == "success":
        if not reached:
            report.errors.append(f"{where}.status: 'success' but no evaluation reached the "
                                 f"target {target}")
        elif run["samples_to_target"] != reached[0]["samples"]:
            report.errors.append(f"{where}.samples_to_target: {run['samples_to_target']} is not "
                                 f"the first evaluation at target ({reached[0]['samples']})")
    elif reached:
        report.errors.append(f"{where}.status: 'aborted' although an evaluation reached the target")
    if run["contention"].get("contended"):
        report.warnings.append(f"{where}: CONTENDED run ({run['contention']['foreign_cores']} "
                               "foreign cores): its time is not trustworthy")


def _check_log(run: dict[str, Any], base: Path, where: str, report: CheckReport) -> None:
    log = base / run["log"]["path"]
    if not log.is_file():
        report.errors.append(f"{where}.path: MLLOG file {log} is missing")
    elif file_sha256(log) != run["log"]["sha256"]:
        report.errors.append(f"{where}.sha256: MLLOG file {log} was changed after the run")


def _check_closed_recipe(recipe: dict[str, Any], reference: Recipe, where: str,
                         report: CheckReport) -> None:
    expected = reference.with_batch_size(int(recipe["batch_size"])).to_dict()
    for key, value in expected.items():
        if key == "hyperparameters":
            for name, ref in value.items():
                got = recipe.get("hyperparameters", {}).get(name)
                if got != ref:
                    report.errors.append(f"{where}.hyperparameters.{name}: {got!r} differs from "
                                         f"the reference {ref!r} (closed division)")
        elif key == "learning_rate":
            if abs(recipe.get(key, 0) - value) > 1e-9 * abs(value):
                report.errors.append(f"{where}.learning_rate: {recipe.get(key)} does not follow "
                                     f"the {reference.lr_scaling} scaling rule ({value})")
        elif recipe.get(key) != value:
            report.errors.append(f"{where}.{key}: {recipe.get(key)!r} differs from the reference "
                                 f"{value!r} (closed division)")


def _check_compliance(doc: dict[str, Any], phase_doc: dict[str, Any], workload: Any, phase: Any,
                      path: Path, report: CheckReport) -> None:
    recipe = Recipe(**{f.name: phase_doc["recipe"][f.name] for f in dataclasses.fields(Recipe)
                       if f.name in phase_doc["recipe"]})
    data_dir = doc["config"].get("data_dir")
    reference = phase.recipe(doc["scale"], Path(data_dir) if data_dir else None)
    spec = ruleset_spec(workload, phase, recipe, reference)
    logs = [(path.parent / r["log"]["path"], r) for r in phase_doc["runs"]
            if (path.parent / r["log"]["path"]).is_file()]
    findings = compliance.check_logs([(log, spec) for log, _ in logs])
    versions = len(findings) // max(1, len(logs))
    for n, finding in enumerate(findings):
        log, run = logs[n // versions]
        label = f"{path}: run {run['index']} ({phase_doc['name']}) MLLOG, ruleset {finding.ruleset}"
        if finding.passed:
            if run["status"] != "success":
                report.errors.append(f"{label}: passes although the run aborted")
            continue
        summary = "; ".join(finding.messages[:3])
        if run["status"] == "success":
            report.errors.append(f"{label}: official compliance checker failed: {summary}")
        else:
            report.notes.append(f"{label}: fails compliance as an aborted run must "
                                f"(not converged): {summary}")
    rulesets = ", ".join(compliance.rulesets_to_check())
    report.notes.append(f"{path}: official compliance checker ran on {len(logs)} "
                        f"{phase_doc['name']} log(s), rulesets {rulesets}")
