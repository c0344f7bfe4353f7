"""Official MLPerf Training result folders as greenperf result files, and MLLOG folder facts.

``import_folder`` turns ``<org>/results/<system>/<benchmark>/result_*.txt`` (with the
declared system description ``<org>/systems/<system>.json``), or a bare benchmark folder,
into a result file of schema 1.0 with ``"origin": "imported-mlperf"``, so that official
results can stand on a greenperf leaderboard beside a user's own, marked as imported:

* the runs come from the logs: time to train from ``run_start``/``run_stop`` (the run_start
  and run_stop the official summarizer picks), status, seed, the eval curve from the
  ``eval_accuracy`` lines (samples from ``samples_count``, else ``epoch_num`` x
  ``train_samples``);
* the score is the official olympic average (``greenperf.mlperf_score.score_folder``), in
  seconds like every greenperf score, with the official minutes kept beside it;
* compliance findings are the official checker's verdicts on each log;
* the logs are copied beside the result with their sha256.

What official logs do not record (memory, energy, contention) is recorded as not measured,
never guessed. Logs are streamed, so memory stays bounded whatever their size; a value a
result file cannot hold (NaN, an infinity, a lone surrogate) is left out, or refused with a
one-line error. An import is all or nothing: it is written into a staging folder inside the
output folder, read back with greenperf's own reader, and only then moved into place.
``greenperf_log_spec`` recognises greenperf's own log folders, so that ``greenperf score``
can check them with greenperf's generated ruleset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
import shutil
import statistics
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from greenperf import __version__
from greenperf.compliance import RulesetSpec
from greenperf.errors import GreenperfError, UsageError
from greenperf.mlperf_score import (
    RESULT_GLOB,
    FolderScore,
    MllogRecord,
    RunScore,
    finite_number,
    infer_ruleset,
    iter_mllog,
    read_json_file,
    score_folder,
)
from greenperf.results import SCHEMA_VERSION, canonical_json, file_sha256, read_result, write_result
from greenperf.runner import config_hash, result_path

IMPORTED_SCALE = "official"
ORIGIN = "imported-mlperf"
# Sample counts stay exact integers: at most 2**53, the largest exact float integer.
MAX_COUNT = 2**53
# Settings logged before run_start become the recipe's hyper-parameters (about 40 in an
# official log), and each eval_accuracy line a point of the eval curve (9 in the ResNet
# fixture, a few hundred in long runs): caps keep a hostile log from growing them unbounded.
MAX_HYPERPARAMETERS = 1_000
MAX_EVALS = 100_000
_TARGET_AT_LEAST = re.compile(r"v\['value'\]\s*>=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)")
# Logged settings that are not hyper-parameters of the recipe.
_NOT_HYPERPARAMETERS = {
    "submission_benchmark", "submission_org", "submission_division", "submission_status",
    "submission_platform", "submission_poc_name", "submission_poc_email", "cache_clear",
    "seed", "global_batch_size", "train_samples", "eval_samples", "init_start", "init_stop",
    "weights_initialization", "run_start", "run_stop", "quality_target", "config_filename",
}
# The first value of each of these is all an import needs of the other settings.
_FIRST_KEYS = ("submission_division", "submission_org", "global_batch_size", "train_samples",
               "eval_samples", "seed")


def first_values(path: Path, keys: Collection[str]) -> dict[str, Any]:
    """The first value logged for each of ``keys``; reading stops once all are found."""
    found: dict[str, Any] = {}
    for record in iter_mllog(path):
        if isinstance(record, MllogRecord) and record.key in keys and record.key not in found:
            found[record.key] = record.value
            if len(found) == len(keys):
                break
    return found


def _scalar(value: Any) -> Any:
    """``value`` if a result file can store it as a scalar (a finite number, a bool, valid
    Unicode text), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if finite_number(value) is not None else None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, from a JSON \ud800 escape
            return None
        return value
    return None


def _count(value: Any) -> int | None:
    """A sample count: a number, clamped to [0, MAX_COUNT]; None if not a number."""
    number = finite_number(value)
    return None if number is None else int(min(max(number, 0.0), MAX_COUNT))


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
    from greenperf.training import benchmark_name, ruleset_spec
    from greenperf.workload import available_workloads

    files = sorted(f for f in Path(folder).glob(RESULT_GLOB) if f.is_file())
    if not files:
        return None
    first = first_values(files[0], ("config_filename", "submission_benchmark",
                                    "global_batch_size", "quality_target"))
    config = first.get("config_filename")
    benchmark = first.get("submission_benchmark")
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
    batch = first.get("global_batch_size")
    if isinstance(batch, int) and not isinstance(batch, bool) and 0 < batch <= MAX_COUNT:
        recipe = reference.with_batch_size(batch)
    target = finite_number(first.get("quality_target"))
    if target is not None:
        recipe = dataclasses.replace(recipe, target=target)
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
    """Import every benchmark folder in or below ``folder``; returns the result files.

    All or nothing: when one folder fails, no file of this import is left behind.
    """
    benches = benchmark_folders(folder)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".greenperf-import-", dir=out_dir))
    except OSError as exc:
        raise UsageError(f"output folder {out_dir}",
                         f"not writable ({exc.strerror or exc})") from exc
    try:
        staged = [_stage(bench, staging, ruleset) for bench in benches]
        return [_commit(staging, out_dir, *paths) for paths in staged]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _commit(staging: Path, out_dir: Path, log_dir: Path, result: Path) -> Path:
    """Move a staged result and its log folder into ``out_dir``, replacing an older import."""
    try:
        final_logs = out_dir / log_dir
        final_logs.parent.mkdir(parents=True, exist_ok=True)
        if final_logs.exists():  # moved aside, and removed with the staging folder
            os.replace(final_logs, Path(tempfile.mkdtemp(dir=staging)) / "old")
        os.replace(staging / log_dir, final_logs)
        os.replace(staging / result, out_dir / result)
    except OSError as exc:
        raise GreenperfError(str(out_dir / result),
                             f"cannot write ({exc.strerror or exc})") from exc
    return out_dir / result


def _stage(folder: Path, staging: Path, ruleset: str | None) -> tuple[Path, Path]:
    """One official benchmark folder as ``<system>/<benchmark>_official_training.json`` and
    its log folder under ``staging``, read back; returns both paths relative to it."""
    folder = Path(folder)
    ruleset = ruleset or infer_ruleset(folder)
    scored = score_folder(folder, ruleset)  # checks the ruleset and runs the official checker
    system_json = systems_file(folder)
    declared = _read_systems_json(system_json) if system_json else {}
    system = str(declared.get("system_name") or folder.resolve().parent.name)
    logs = {run.file: _read_run_log(folder / run.file, run) for run in scored.runs}
    first = logs[scored.runs[0].file]
    division = str(declared.get("division") or _scalar(first.first.get("submission_division"))
                   or "closed")
    if division not in ("closed", "open"):
        raise GreenperfError(str(folder), f"division {division[:60]!r} is neither closed nor "
                                          "open")
    try:
        target = official_target(scored.benchmark, scored.ruleset, division)
    except GreenperfError as exc:  # name the folder: its systems file or logs chose these
        raise type(exc)(str(folder), f"{division} division, {exc.where}: {exc.problem}") \
            from exc
    dest = staging / _safe(system)
    log_dir = dest / "logs" / f"{scored.benchmark}_{IMPORTED_SCALE}" / "train"
    if log_dir.exists():
        raise GreenperfError(str(folder), f"imports to the same result as another folder "
                                          f"(system {_safe(system)}, {scored.benchmark})")
    log_dir.mkdir(parents=True)

    runs = []
    for index, run in enumerate(scored.runs, start=1):
        copied = log_dir / f"result_{index}.txt"
        shutil.copyfile(folder / run.file, copied)
        runs.append(_run_record(index, logs[run.file], run, target,
                                copied.relative_to(dest).as_posix(), file_sha256(copied)))
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise GreenperfError(str(folder), f"the logs do not have distinct seeds ({seeds})")

    recipe = {"batch_size": _scalar(first.first.get("global_batch_size")), "eval_every": None,
              "max_samples": None, "target": target,
              "learning_rate": _scalar(first.learning_rate),
              "hyperparameters": first.hyperparameters(),
              "source": "official MLLOG log of run 1"}
    config = {"source": str(folder.resolve()), "benchmark": scored.benchmark,
              "ruleset": scored.ruleset, "submitter": declared.get("submitter")
              or _scalar(first.first.get("submission_org")), "system": system,
              "logs": [run.file for run in scored.runs]}
    phase = {
        "name": "train", "metric": "eval_accuracy", "target": target, "recipe": recipe,
        "dataset": {"name": scored.benchmark, "source": "official MLPerf data (imported)",
                    "checksum": "", "train_samples": _count(first.first.get("train_samples")) or 0,
                    "eval_samples": _count(first.first.get("eval_samples")) or 0, "nbytes": 0},
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
        "config_hash": "",
        "phases": [phase],
        "sustainability": None,
        "compliance": {"rulesets": [scored.ruleset], "findings": [
            {"log": r["log"]["path"], "ruleset": scored.ruleset, "passed": run.compliance_ok,
             "messages": list(run.compliance_messages), "run": r["index"], "phase": "train",
             "source_file": run.file}
            for r, run in zip(runs, scored.runs, strict=True)]},
    }
    try:  # what sealing encodes: a path or name with a lone surrogate cannot be stored
        doc["config_hash"] = config_hash(config)
        canonical_json(doc)
    except (ValueError, RecursionError) as exc:
        raise GreenperfError(str(folder), f"cannot be stored as a result file "
                                          f"({str(exc)[:120]})") from exc
    path = result_path(dest, scored.benchmark, IMPORTED_SCALE)
    write_result(path, doc)
    try:  # the reader greenperf check uses: never leave a file that it rejects
        read_result(path)
    except GreenperfError as exc:
        match = re.search(r"runs\[(\d+)\]", exc.problem)
        culprit = folder / scored.runs[int(match.group(1))].file if match else folder
        raise GreenperfError(str(culprit), "the imported result would not be valid: "
                                           f"{exc.problem}") from exc
    return log_dir.relative_to(staging), path.relative_to(staging)


@dataclass
class _Interval:
    """Seconds from ``begin`` to ``end`` events within [low, high], summed as they come."""

    begin: str
    end: str
    low: float | None = None
    high: float | None = None
    total: float = 0.0
    opened: float | None = None

    def add(self, key: str, time_ms: float) -> None:
        if (self.low is not None and time_ms < self.low) or (
                self.high is not None and time_ms > self.high):
            return
        if key == self.begin:
            self.opened = time_ms
        elif key == self.end and self.opened is not None:
            self.total += max(time_ms - self.opened, 0.0) / 1000.0  # no negative interval
            self.opened = None


@dataclass
class _RunLog:
    """What an import takes from one log, gathered in one streaming pass."""

    first: dict[str, Any] = field(default_factory=dict)
    learning_rate: Any = None
    evals: list[tuple[float, Any, Any, Any]] = field(default_factory=list)  # t, value, n, epoch
    init: _Interval = field(default_factory=lambda: _Interval("init_start", "init_stop"))
    eval: _Interval = field(default_factory=lambda: _Interval("eval_start", "eval_stop"))
    # key -> (value, the latest time logged up to it): settings logged around run_start.
    settings: dict[str, tuple[Any, float]] = field(default_factory=dict)
    first_run_start: float | None = None
    settings_done: bool = False

    def hyperparameters(self) -> dict[str, Any]:
        """Settings logged, in file order, before an event later than the first run_start."""
        start = self.first_run_start
        return {k: v for k, (v, latest) in self.settings.items()
                if start is None or latest <= start}


def _read_run_log(path: Path, run: RunScore) -> _RunLog:
    log = _RunLog()
    log.eval.low, log.eval.high = run.run_start_ms, run.run_stop_ms
    latest = -math.inf
    for record in iter_mllog(path):
        if not isinstance(record, MllogRecord):
            continue  # a bad line: score_folder counted it, and dropped the run
        key, time_ms = record.key, record.time_ms
        if key in _FIRST_KEYS and key not in log.first:
            log.first[key] = record.value
        if log.learning_rate is None and key.endswith("opt_base_learning_rate"):
            log.learning_rate = record.value
        log.init.add(key, time_ms)
        log.eval.add(key, time_ms)
        if key == "eval_accuracy" and run.run_start_ms is not None \
                and time_ms >= run.run_start_ms:
            if len(log.evals) == MAX_EVALS:
                raise GreenperfError(str(path), f"more than {MAX_EVALS:,} eval_accuracy lines: "
                                                "not a training log greenperf imports")
            log.evals.append((time_ms, record.value, record.metadata.get("samples_count"),
                              record.metadata.get("epoch_num")))
        if log.settings_done:
            continue
        latest = max(latest, time_ms)
        if log.first_run_start is not None and latest > log.first_run_start:
            log.settings_done = True
            continue
        if key == "run_start" and log.first_run_start is None:
            log.first_run_start = time_ms
        value = _scalar(record.value)
        if (record.event_type == "POINT_IN_TIME" and key not in _NOT_HYPERPARAMETERS
                and value is not None and _scalar(key) is not None and key not in log.settings
                and len(log.settings) < MAX_HYPERPARAMETERS):
            log.settings[key] = (value, latest)
    return log


def _run_record(index: int, log: _RunLog, run: RunScore, target: float, log_path: str,
                sha256: str) -> dict[str, Any]:
    start, stop = run.run_start_ms, run.run_stop_ms
    train_samples = _count(log.first.get("train_samples"))
    curve = []
    for time_ms, value, count, epoch in log.evals:
        if start is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        curve.append({"samples": _eval_samples(count, epoch, train_samples),
                      "seconds": (time_ms - start) / 1000.0,
                      "metric": finite_number(value),  # NaN: null, as the schema allows
                      "epoch": epoch if finite_number(epoch) is not None else None})
    reached = [p for p in curve if p["metric"] is not None and p["metric"] >= target]
    # run.minutes is None unless run_start and run_stop were both logged, in that order.
    timed = run.minutes is not None and start is not None and stop is not None
    success = run.status == "success" and bool(reached) and timed
    tta = (stop - start) / 1000.0 if timed and start is not None and stop is not None else 0.0
    train_seconds = max(tta - log.eval.total, 0.0)
    samples_seen = curve[-1]["samples"] if curve else 0
    seed = finite_number(log.first.get("seed"))
    epochs = finite_number(curve[-1]["epoch"]) if curve else None
    if epochs is None or epochs < 0:
        epochs = samples_seen / train_samples if train_samples else 0.0
    throughput = samples_seen / train_seconds if train_seconds > 0 else 0.0
    return {
        "index": index,
        "seed": int(seed) if seed is not None else index,
        "status": "success" if success else "aborted",
        "abort_reason": None if success else (run.drop_reason or f"run_stop status "
                                                                f"{run.status!r}"),
        "init_seconds": log.init.total,
        "tta_seconds": tta,
        "samples_seen": samples_seen,
        "samples_to_target": reached[0]["samples"] if success else None,
        "epochs": float(epochs),
        "train_seconds": train_seconds,
        "eval_seconds": log.eval.total,
        "train_throughput": throughput if math.isfinite(throughput) else 0.0,
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
                     "drop_reason": run.drop_reason,
                     "seed_logged": isinstance(log.first.get("seed"), int)},
    }


def _eval_samples(count: Any, epoch: Any, train_samples: int | None) -> int:
    samples = _count(count)
    if samples is not None:
        return samples
    epochs = finite_number(epoch)
    if epochs is not None and train_samples is not None:
        return _count(round(epochs * train_samples)) or 0
    return 0


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


def _read_systems_json(path: Path) -> dict[str, Any]:
    data = read_json_file(path, "systems JSON")
    if not isinstance(data, dict):
        raise GreenperfError(str(path), "a systems JSON is an object")
    try:  # the result file keeps it as declared, in strict JSON and UTF-8
        canonical_json(data)
    except UnicodeEncodeError as exc:
        raise GreenperfError(str(path), "holds a lone UTF-16 surrogate (not valid "
                                        "Unicode)") from exc
    except ValueError as exc:
        raise GreenperfError(str(path), "holds NaN or Infinity, which JSON cannot "
                                        "store") from exc
    return data


def _software(declared: dict[str, Any]) -> dict[str, Any]:
    software = {"framework": declared.get("framework"),
                "operating_system": declared.get("operating_system")}
    other = declared.get("other_software_stack")
    if isinstance(other, dict):
        software.update(other)
    return {k: v for k, v in software.items() if v not in (None, "")}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("_") or "system"
