"""Official MLPerf Training result folders as greenperf result files, and MLLOG folder facts.

``import_folder`` turns ``<org>/results/<system>/<benchmark>/result_*.txt`` (with the
declared system description ``<org>/systems/<system>.json``), or a bare benchmark folder,
into a result file of schema 1.0 with ``"origin": "imported-mlperf"``, so that official
results can stand on a greenperf leaderboard beside a user's own, marked as imported:

* the runs come from the logs: time to train from ``run_start``/``run_stop`` (the run_start
  and run_stop the official summarizer picks), status, seed, the eval curve from the
  ``eval_accuracy`` lines (samples from ``samples_count``, else ``epoch_num`` x
  ``train_samples``);
* the score is the official olympic average (``harness.mlperf_score.score_folder``), in
  seconds like every greenperf score, with the official minutes kept beside it;
* compliance findings are the official checker's verdicts on each log;
* the logs are copied beside the result with their sha256.

What official logs do not record (memory, energy, contention) is recorded as not measured,
never guessed. ``greenperf_log_spec`` recognises greenperf's own log folders, so that
``greenperf score`` can check them with greenperf's generated ruleset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import statistics
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness import __version__
from harness.compliance import RulesetSpec
from harness.errors import GreenperfError, UsageError
from harness.mlperf_score import RESULT_GLOB, FolderScore, infer_ruleset, score_folder
from harness.results import SCHEMA_VERSION, file_sha256, write_result
from harness.runner import config_hash, result_path

MLLOG_TOKEN = ":::MLLOG "
IMPORTED_SCALE = "official"
ORIGIN = "imported-mlperf"
_TARGET_AT_LEAST = re.compile(r"v\['value'\]\s*>=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)")
# Logged settings that are not hyper-parameters of the recipe.
_NOT_HYPERPARAMETERS = {
    "submission_benchmark", "submission_org", "submission_division", "submission_status",
    "submission_platform", "submission_poc_name", "submission_poc_email", "cache_clear",
    "seed", "global_batch_size", "train_samples", "eval_samples", "init_start", "init_stop",
    "weights_initialization", "run_start", "run_stop", "quality_target", "config_filename",
}


@dataclass(frozen=True)
class MllogEvent:
    key: str
    value: Any
    metadata: dict[str, Any]
    time_ms: float
    event_type: str


def read_mllog(path: Path) -> list[MllogEvent]:
    """The MLLOG events of a log file, skipping lines the official parser would skip too."""
    try:
        text = Path(path).read_text(encoding="latin-1")
    except OSError as exc:
        raise GreenperfError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    events = []
    for raw in text.splitlines():
        if MLLOG_TOKEN not in raw:
            continue
        try:
            record = json.loads(raw[raw.rindex(MLLOG_TOKEN) + len(MLLOG_TOKEN):].strip())
            events.append(MllogEvent(str(record["key"]), record.get("value"),
                                     record.get("metadata") or {}, float(record["time_ms"]),
                                     str(record.get("event_type", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    if not events:
        raise GreenperfError(str(path), "no parseable ':::MLLOG' line: not an MLLOG result log")
    return events


def first_value(events: list[MllogEvent], key: str) -> Any:
    return next((e.value for e in events if e.key == key), None)


# -- greenperf's own log folders --------------------------------------------------------------


@dataclass(frozen=True)
class GreenperfLogs:
    """A folder of greenperf MLLOG logs: which workload phase wrote them, and its ruleset."""

    workload: str
    phase: str
    scale: str
    spec: RulesetSpec


def greenperf_log_spec(folder: Path) -> GreenperfLogs | None:
    """greenperf's ruleset for a folder of its own logs; None for other (official) logs.

    greenperf logs name ``config_filename`` ``<workload>/<scale>`` and a
    ``submission_benchmark`` that is a phase of that installed workload.
    """
    from harness.training import benchmark_name, ruleset_spec
    from harness.workload import available_workloads

    files = sorted(Path(folder).glob(RESULT_GLOB))
    if not files:
        return None
    events = read_mllog(files[0])
    config = first_value(events, "config_filename")
    benchmark = first_value(events, "submission_benchmark")
    if not isinstance(config, str) or config.count("/") != 1:
        return None
    name, scale = config.split("/")
    workload = available_workloads().get(name)
    if workload is None:
        return None
    phase = next((p for p in workload.phases() if benchmark_name(workload, p) == benchmark), None)
    if phase is None or scale not in workload.scales:
        return None
    reference = phase.recipe(scale)
    recipe = reference
    batch = first_value(events, "global_batch_size")
    if isinstance(batch, int) and batch > 0:
        recipe = reference.with_batch_size(batch)
    target = first_value(events, "quality_target")
    if isinstance(target, int | float):
        recipe = dataclasses.replace(recipe, target=float(target))
    return GreenperfLogs(workload.name, phase.name, scale,
                         ruleset_spec(workload, phase, recipe, reference))


# -- official folders -------------------------------------------------------------------------


def benchmark_folders(folder: Path) -> list[Path]:
    """Folders holding ``result_*.txt``: ``folder`` itself, or below it (an org folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(str(folder), "no such folder")
    if any(folder.glob(RESULT_GLOB)):
        return [folder]
    found = sorted({p.parent for p in folder.rglob(RESULT_GLOB)})
    if not found:
        raise UsageError(str(folder), f"no {RESULT_GLOB} logs in or below this folder")
    return found


def systems_file(benchmark_folder: Path) -> Path | None:
    """``<org>/systems/<system>.json`` for ``<org>/results/<system>/<benchmark>``."""
    system_dir = benchmark_folder.resolve().parent
    if system_dir.parent.name != "results":
        return None
    candidate = system_dir.parent.parent / "systems" / f"{system_dir.name}.json"
    return candidate if candidate.is_file() else None


def official_target(benchmark: str, ruleset: str, division: str) -> float:
    """The quality target of an official benchmark, read from the installed ruleset."""
    root = resources.files("mlperf_logging.compliance_checker").joinpath(f"training_{ruleset}")
    names = [f"{division}_{benchmark}.yaml", f"closed_{benchmark}.yaml"]
    for name in names:
        entry = root.joinpath(name)
        if not entry.is_file():
            continue
        for item in yaml.safe_load(entry.read_text()) or []:
            record = (item or {}).get("KEY") or {}
            if record.get("NAME") == "eval_accuracy" and record.get("ATLEAST_ONE_CHECK"):
                match = _TARGET_AT_LEAST.search(str(record["ATLEAST_ONE_CHECK"]))
                if match:
                    return float(match.group(1))
                raise UsageError(f"benchmark {benchmark}",
                                 "its quality target is not a 'metric >= target' rule "
                                 f"({record['ATLEAST_ONE_CHECK']}); cannot import it")
    raise UsageError(f"benchmark {benchmark}",
                     f"ruleset training {ruleset} defines no quality target for it")


def import_folder(folder: Path, out_dir: Path, ruleset: str | None = None) -> list[Path]:
    """Import every benchmark folder in or below ``folder``; returns the result files."""
    return [import_benchmark_folder(bench, out_dir, ruleset) for bench in benchmark_folders(folder)]


def import_benchmark_folder(folder: Path, out_dir: Path, ruleset: str | None = None) -> Path:
    """One official benchmark folder -> ``OUT/<system>/<benchmark>_official_training.json``."""
    folder = Path(folder)
    ruleset = ruleset or infer_ruleset(folder)
    scored = score_folder(folder, ruleset)  # checks the ruleset and runs the official checker
    system_json = systems_file(folder)
    declared = _read_systems_json(system_json) if system_json else {}
    system = str(declared.get("system_name") or folder.resolve().parent.name)
    logs = {run.file: read_mllog(folder / run.file) for run in scored.runs}
    first = logs[scored.runs[0].file]
    division = str(declared.get("division") or first_value(first, "submission_division")
                   or "closed")
    if division not in ("closed", "open"):
        raise GreenperfError(str(folder), f"division {division!r} is neither closed nor open")
    target = official_target(scored.benchmark, scored.ruleset, division)
    dest = Path(out_dir) / _safe(system)
    log_dir = dest / "logs" / f"{scored.benchmark}_{IMPORTED_SCALE}" / "train"
    log_dir.mkdir(parents=True, exist_ok=True)

    runs = []
    for index, run in enumerate(scored.runs, start=1):
        copied = log_dir / f"result_{index}.txt"
        shutil.copyfile(folder / run.file, copied)
        runs.append(_run_record(index, logs[run.file], run, target,
                                copied.relative_to(dest).as_posix(), file_sha256(copied)))
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise GreenperfError(str(folder), f"the logs do not have distinct seeds ({seeds})")

    train_samples = first_value(first, "train_samples")
    eval_samples = first_value(first, "eval_samples")
    batch = first_value(first, "global_batch_size")
    learning_rate = next((e.value for e in first if e.key.endswith("opt_base_learning_rate")),
                         None)
    recipe = {"batch_size": batch, "eval_every": None, "max_samples": None, "target": target,
              "learning_rate": learning_rate, "hyperparameters": _hyperparameters(first),
              "source": "official MLLOG log of run 1"}
    config = {"source": str(folder.resolve()), "benchmark": scored.benchmark,
              "ruleset": scored.ruleset, "submitter": declared.get("submitter")
              or first_value(first, "submission_org"), "system": system,
              "logs": [run.file for run in scored.runs]}
    phase = {
        "name": "train", "metric": "eval_accuracy", "target": target, "recipe": recipe,
        "dataset": {"name": scored.benchmark, "source": "official MLPerf data (imported)",
                    "checksum": "", "train_samples": _non_negative_int(train_samples),
                    "eval_samples": _non_negative_int(eval_samples), "nbytes": 0},
        "runs": runs, "score": _score(scored, runs),
    }
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "training",
        "generator": {"name": "greenperf import-mlperf", "version": __version__},
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "status": "complete",
        "status_reason": None,
        "workload": scored.benchmark,
        "scale": IMPORTED_SCALE,
        "division": division,
        "origin": ORIGIN,
        "imported": {
            "from": "MLPerf Training official results",
            "folder": str(folder.resolve()),
            "systems_file": str(system_json.resolve()) if system_json else None,
            "ruleset": scored.ruleset,
            "official_score_minutes": scored.score_minutes,
            "note": "official result, imported: not measured by greenperf",
        },
        "system": {"name": system, "auto": {}, "declared": declared,
                   "declared_source": str(system_json.resolve()) if system_json else None},
        "software": _software(declared),
        "config": config,
        "config_hash": config_hash(config),
        "phases": [phase],
        "sustainability": None,
        "compliance": {"rulesets": [scored.ruleset], "findings": [
            {"log": r["log"]["path"], "ruleset": scored.ruleset, "passed": run.compliance_ok,
             "messages": list(run.compliance_messages), "run": r["index"], "phase": "train",
             "source_file": run.file}
            for r, run in zip(runs, scored.runs, strict=True)]},
    }
    path = result_path(dest, scored.benchmark, IMPORTED_SCALE)
    write_result(path, doc)
    return path


def _run_record(index: int, events: list[MllogEvent], run: Any, target: float, log_path: str,
                sha256: str) -> dict[str, Any]:
    start = run.run_start_ms
    stop = run.run_stop_ms
    train_samples = first_value(events, "train_samples")
    curve = []
    for event in events:
        if event.key != "eval_accuracy" or start is None or event.time_ms < start:
            continue
        if not isinstance(event.value, int | float):
            continue
        samples = _eval_samples(event, train_samples)
        curve.append({"samples": samples, "seconds": (event.time_ms - start) / 1000.0,
                      "metric": float(event.value), "epoch": event.metadata.get("epoch_num")})
    reached = [p for p in curve if p["metric"] >= target]
    success = run.status == "success" and bool(reached)
    tta = (stop - start) / 1000.0 if start is not None and stop is not None else 0.0
    eval_seconds = _interval_seconds(events, "eval_start", "eval_stop", start, stop)
    train_seconds = max(tta - eval_seconds, 0.0)
    samples_seen = curve[-1]["samples"] if curve else 0
    init = _interval_seconds(events, "init_start", "init_stop", None, None)
    seed = first_value(events, "seed")
    epochs = curve[-1]["epoch"] if curve else None
    if not isinstance(epochs, int | float):
        epochs = samples_seen / train_samples if isinstance(train_samples, int) and \
            train_samples > 0 else 0.0
    return {
        "index": index,
        "seed": int(seed) if isinstance(seed, int | float) else index,
        "status": "success" if success else "aborted",
        "abort_reason": None if success else (run.drop_reason or f"run_stop status "
                                                                f"{run.status!r}"),
        "init_seconds": init,
        "tta_seconds": tta,
        "samples_seen": samples_seen,
        "samples_to_target": reached[0]["samples"] if success else None,
        "epochs": float(epochs),
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "train_throughput": samples_seen / train_seconds if train_seconds > 0 else 0.0,
        "evals": len(curve),
        "final_metric": curve[-1]["metric"] if curve else None,
        "eval_curve": curve,
        "peak_rss_bytes": 0,
        "cuda_max_allocated_bytes": None,
        "not_measured": ["peak_rss_bytes", "energy", "contention"],
        "contention": {"foreign_cores": None, "contended": False,
                       "source": "not measured (imported official log)"},
        "energy": None,
        "log": {"path": log_path, "sha256": sha256},
        "official": {"file": run.file, "minutes": run.minutes, "status": run.status,
                     "compliance_ok": run.compliance_ok, "counted": run.converged,
                     "drop_reason": run.drop_reason, "seed_logged": isinstance(seed, int)},
    }


def _eval_samples(event: MllogEvent, train_samples: Any) -> int:
    count = event.metadata.get("samples_count")
    if isinstance(count, int | float):
        return int(count)
    epoch = event.metadata.get("epoch_num")
    if isinstance(epoch, int | float) and isinstance(train_samples, int | float):
        return int(round(epoch * train_samples))
    return 0


def _interval_seconds(events: list[MllogEvent], begin: str, end: str, low: float | None,
                      high: float | None) -> float:
    total = 0.0
    opened: float | None = None
    for event in events:
        if (low is not None and event.time_ms < low) or (high is not None
                                                          and event.time_ms > high):
            continue
        if event.key == begin:
            opened = event.time_ms
        elif event.key == end and opened is not None:
            total += (event.time_ms - opened) / 1000.0
            opened = None
    return total


def _score(scored: FolderScore, runs: list[dict[str, Any]]) -> dict[str, Any]:
    minutes = scored.score_minutes
    ok_times = [r["tta_seconds"] for r in runs if r["status"] == "success"]
    counted = set(scored.counted_files)
    return {
        "method": "mlperf_official_olympic_average",
        "value": minutes * 60 if minutes is not None else None,
        "unit": "s",
        "n_runs": len(runs),
        "n_success": sum(1 for r in runs if r["official"]["counted"]),
        "reason": scored.reason,
        "median": statistics.median(ok_times) if ok_times else None,
        "std": statistics.stdev(ok_times) if len(ok_times) > 1 else None,
        "ci95": None,
        "dropped_runs": [r["index"] for r in runs if r["official"]["file"] not in counted],
        "official_minutes": minutes,
        "official_ruleset": scored.ruleset,
        "scaling_factor": scored.scaling_factor,
    }


def _hyperparameters(events: list[MllogEvent]) -> dict[str, Any]:
    start = next((e.time_ms for e in events if e.key == "run_start"), None)
    out: dict[str, Any] = {}
    for event in events:
        if start is not None and event.time_ms > start:
            break
        if event.event_type != "POINT_IN_TIME" or event.key in _NOT_HYPERPARAMETERS:
            continue
        if isinstance(event.value, int | float | str | bool) and event.key not in out:
            out[event.key] = event.value
    return out


def _read_systems_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GreenperfError(str(path), f"not a readable systems JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise GreenperfError(str(path), "a systems JSON is an object")
    return data


def _software(declared: dict[str, Any]) -> dict[str, Any]:
    software = {"framework": declared.get("framework"),
                "operating_system": declared.get("operating_system")}
    other = declared.get("other_software_stack")
    if isinstance(other, dict):
        software.update(other)
    return {k: v for k, v in software.items() if v not in (None, "")}


def _non_negative_int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("_") or "system"
