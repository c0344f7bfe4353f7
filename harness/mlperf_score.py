"""Score a folder of MLLOG result logs the way the official MLPerf Training tools do.

Mirrors ``mlperf_logging/result_summarizer/result_summarizer.py`` (mlperf-logging 4.1.68):

- ``_query_run_start_stop``: the last ``run_start`` seen before the first ``run_stop``
  (the loop stops as soon as both are known); timestamps are ``float(time_ms)``.
- ``_compute_strong_score_standalone``: minutes = ``(stop - start) / 60 / 1000`` in that
  order; a run that fails the compliance checker is dropped and counts as a slowest run;
  more than ``max_dropped`` (4 for unet3d, else 1) dropped runs gives no score; an existing
  ``scaling.json`` in the folder multiplies the score.
- ``_compute_olympic_average``: sort, keep ``scores[max_dropped : n - (max_dropped - dropped)]``,
  ``sum(kept) * 1.0 / len(kept)``.

One addition: a run whose ``run_stop`` status is not ``success`` is dropped too. The
training compliance rules since 0.7 do not check the status (the official rcp_checker does);
on official logs the two agree, since an aborted run also fails its accuracy check.

Unlike the official tool, scoring never writes into the folder: the official summarizer's RCP
pass writes ``scaling.json`` there, which changes the answer of a second run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.compliance import installed_rulesets
from harness.errors import GreenperfError, UsageError

MLLOG_TOKEN = ":::MLLOG "
RESULT_GLOB = "result_*.txt"
SCALING_FILE = "scaling.json"
COMPLIANCE_TIMEOUT_S = 300.0
# The compliance checker's log joins its messages with this separator line.
_MESSAGE_SEPARATOR = "\n" + "-" * 30 + "\n"
_LOG_RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) - (.*)$")
# Official result repositories are named training_results_v4.0; the fixture mlperf_training_v4.0.
_VERSION_IN_PATH = re.compile(r"(training|hpc)[_-](?:results[_-])?v(\d+)\.(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class RunScore:
    """One result log: its timing, its run_stop status and the compliance verdict."""

    file: str
    run_start_ms: float | None
    run_stop_ms: float | None
    minutes: float | None
    status: str
    compliance_ok: bool
    compliance_messages: tuple[str, ...]
    converged: bool
    drop_reason: str | None


@dataclass(frozen=True)
class FolderScore:
    """The olympic time-to-train of a folder of runs, or the reason there is none."""

    folder: str
    usage: str
    ruleset: str
    benchmark: str
    runs: tuple[RunScore, ...]
    max_dropped: int
    scaling_factor: float
    score_minutes: float | None
    reason: str | None
    counted_files: tuple[str, ...]

    @property
    def dropped_runs(self) -> int:
        return sum(1 for run in self.runs if not run.converged)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["runs"] = [asdict(run) for run in self.runs]
        out["counted_files"] = list(self.counted_files)
        out["dropped_runs"] = self.dropped_runs
        for run in out["runs"]:
            run["compliance_messages"] = list(run["compliance_messages"])
        return out


@dataclass(frozen=True)
class _LogFacts:
    run_start_ms: float | None
    run_stop_ms: float | None
    status: str
    benchmark: str | None


def infer_ruleset(folder: Path, usage: str = "training") -> str | None:
    """The ruleset named by a path part like ``training_results_v4.0``, if any."""
    for part in reversed(folder.resolve().parts):
        match = _VERSION_IN_PATH.search(part)
        if match and match.group(1).lower() == usage:
            return f"{match.group(2)}.{match.group(3)}.0"
    return None


def olympic_average(scores: Sequence[float], dropped: int, max_dropped: int) -> float | None:
    """MLPerf olympic average, exactly as the official summarizer computes it.

    ``dropped`` runs were already removed as non-converged; they stand for the slowest ones,
    so fewer slow scores are cut. ``None`` when nothing is left to average.
    """
    ordered = sorted(scores)
    kept = ordered[max_dropped : len(ordered) - (max_dropped - dropped)]
    if not kept:
        return None
    # sum() from the left over the sorted list, then * 1.0 / n: the official order of operations.
    return sum(kept) * 1.0 / len(kept)


def max_dropped_runs(benchmark: str) -> int:
    """How many runs the olympic rule drops at each end (unet3d has 40 runs and drops 4)."""
    return 4 if benchmark == "unet3d" else 1


def score_folder(
    path: Path,
    ruleset: str | None = None,
    benchmark: str | None = None,
    *,
    usage: str = "training",
    config: Path | None = None,
) -> FolderScore:
    """Score every ``result_*.txt`` in ``path``; read-only.

    ``ruleset`` defaults to the version named in the path (``training_results_v4.0``).
    ``config`` is a compliance config to use instead of the ruleset's ``common.yaml``
    (greenperf's own generated ruleset). ``benchmark`` defaults to the logs'
    ``submission_benchmark``, then to the folder name.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise GreenperfError(str(folder), "result folder not found")
    files = sorted(
        (f for f in folder.glob(RESULT_GLOB) if f.is_file()), key=lambda f: _natural_key(f.name)
    )
    if not files:
        raise GreenperfError(str(folder), f"no {RESULT_GLOB} files to score")
    ruleset = _resolve_ruleset(folder, usage, ruleset)
    if config is not None and not Path(config).is_file():
        raise UsageError(str(config), "compliance config file not found")

    facts = {f: _read_log_facts(f) for f in files}
    benchmark = benchmark or _benchmark_of(folder, list(facts.values()))
    with tempfile.TemporaryDirectory(prefix="greenperf-cc-") as scratch:
        verdicts = {f: _run_compliance(f, usage, ruleset, config, Path(scratch)) for f in files}

    runs = tuple(_run_score(f, facts[f], *verdicts[f]) for f in files)
    max_dropped = max_dropped_runs(benchmark)
    scaling_factor = _read_scaling_factor(folder)
    score, reason, counted = _olympic_score(runs, max_dropped, scaling_factor)
    return FolderScore(
        folder=str(folder),
        usage=usage,
        ruleset=ruleset,
        benchmark=benchmark,
        runs=runs,
        max_dropped=max_dropped,
        scaling_factor=scaling_factor,
        score_minutes=score,
        reason=reason,
        counted_files=counted,
    )


def _olympic_score(
    runs: Sequence[RunScore], max_dropped: int, scaling_factor: float
) -> tuple[float | None, str | None, tuple[str, ...]]:
    converged = [run for run in runs if run.converged]
    dropped = [run.file for run in runs if not run.converged]
    if len(dropped) > max_dropped:
        return (
            None,
            f"too many non-converged runs: {len(dropped)} ({', '.join(dropped)}); "
            f"the olympic rule allows at most {max_dropped}",
            (),
        )
    minutes = [run.minutes for run in converged if run.minutes is not None]
    average = olympic_average(minutes, len(dropped), max_dropped)
    if average is None:
        return (
            None,
            f"no run left to average after dropping {max_dropped} fastest and "
            f"{max_dropped} slowest of {len(runs)} runs",
            (),
        )
    ordered = sorted(converged, key=lambda run: run.minutes or 0.0)
    counted = ordered[max_dropped : len(ordered) - (max_dropped - len(dropped))]
    return average * scaling_factor, None, tuple(run.file for run in counted)


def _run_score(
    file: Path, facts: _LogFacts, compliance_ok: bool, messages: tuple[str, ...]
) -> RunScore:
    minutes = None
    if facts.run_start_ms is not None and facts.run_stop_ms is not None:
        minutes = (facts.run_stop_ms - facts.run_start_ms) / 60 / 1000
    problems = []
    if not compliance_ok:
        problems.append("fails the compliance checker")
    if minutes is None:
        problems.append("run_start or run_stop not recorded")
    elif facts.status != "success":
        problems.append(f"run_stop status is {facts.status!r}, not 'success'")
    drop_reason = "; ".join(problems) or None
    return RunScore(
        file=file.name,
        run_start_ms=facts.run_start_ms,
        run_stop_ms=facts.run_stop_ms,
        minutes=minutes,
        status=facts.status,
        compliance_ok=compliance_ok,
        compliance_messages=messages,
        converged=drop_reason is None,
        drop_reason=drop_reason,
    )


def _read_log_facts(file: Path) -> _LogFacts:
    """run_start/run_stop times, status and benchmark, read like ``mlp_parser`` reads them."""
    try:
        with open(file, encoding="latin-1") as handle:
            lines = handle.readlines()
    except OSError as err:
        raise GreenperfError(str(file), f"cannot read: {err.strerror or err}") from err

    run_start = run_stop = None
    status = "incomplete"
    benchmark = None
    parsed = 0
    for lineno, raw in enumerate(lines, start=1):
        if MLLOG_TOKEN not in raw:
            continue
        record = _parse_mllog_line(file, lineno, raw)
        if record is None:
            # The official parser skips a line it cannot decode; the compliance checker then
            # fails the run ("Log lines had parsing errors"), so it is dropped, not fatal.
            continue
        parsed += 1
        key, timestamp, value, metadata = record
        if key == "submission_benchmark" and benchmark is None and isinstance(value, str):
            benchmark = value
        if run_start is not None and run_stop is not None:
            continue
        if key == "run_start":
            run_start = timestamp
        elif key == "run_stop":
            run_stop = timestamp
            found = metadata.get("status") if isinstance(metadata, dict) else None
            status = str(found) if found is not None else "unknown"
    if parsed == 0:
        raise GreenperfError(str(file), "no parseable ':::MLLOG' line: not an MLLOG result log")
    return _LogFacts(run_start, run_stop, status, benchmark)


def _parse_mllog_line(file: Path, lineno: int, raw: str) -> tuple[str, float, Any, Any] | None:
    text = raw[raw.rindex(MLLOG_TOKEN) :].strip()
    try:
        record = json.loads(text[len(MLLOG_TOKEN) :])
    except ValueError:
        return None
    where = f"{file}:{lineno}"
    if not isinstance(record, dict):
        raise GreenperfError(where, "MLLOG line is not a JSON object")
    for field in ("time_ms", "key", "value", "metadata"):
        if field not in record:
            raise GreenperfError(where, f"MLLOG line has no {field!r}")
    try:
        timestamp = float(record["time_ms"])
    except (TypeError, ValueError):
        return None
    return str(record["key"]), timestamp, record["value"], record["metadata"]


def _run_compliance(
    file: Path, usage: str, ruleset: str, config: Path | None, scratch: Path
) -> tuple[bool, tuple[str, ...]]:
    """Run the official checker in a fresh process (its module keeps a global config queue).

    It runs in a scratch directory so that its log file lands there, not in the results.
    """
    log_file = scratch / f"{file.name}.compliance.log"
    command = [
        sys.executable,
        "-m",
        "mlperf_logging.compliance_checker",
        "--usage",
        usage,
        "--ruleset",
        ruleset,
        "--log_output",
        str(log_file),
    ]
    if config is not None:
        command += ["--config", str(Path(config).resolve())]
    command.append(str(file.resolve()))
    try:
        done = subprocess.run(
            command, cwd=scratch, capture_output=True, text=True, timeout=COMPLIANCE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as err:
        raise GreenperfError(str(file), "the compliance checker timed out") from err
    log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
    records = _log_records(log_text)
    failed = any(level == "ERROR" and msg.strip() == "FAILED" for level, msg in records)
    succeeded = any(level == "INFO" and msg.strip() == "SUCCESS" for level, msg in records)
    if not (done.returncode == 0 and succeeded) and not (done.returncode == 1 and failed):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GreenperfError(str(file), f"the compliance checker crashed: {last}")
    messages = [
        part.strip()
        for level, msg in records
        if level in ("WARNING", "ERROR", "CRITICAL") and msg.strip() != "FAILED"
        for part in msg.split(_MESSAGE_SEPARATOR)
        if part.strip()
    ]
    return done.returncode == 0, tuple(messages)


def _log_records(text: str) -> list[tuple[str, str]]:
    records: list[list[str]] = []
    for line in text.splitlines():
        match = _LOG_RECORD.match(line)
        if match:
            records.append([match.group(1), match.group(2)])
        elif records:
            records[-1][1] += "\n" + line
    return [(level, msg) for level, msg in records]


def _resolve_ruleset(folder: Path, usage: str, ruleset: str | None) -> str:
    known = installed_rulesets(usage)
    if not known:
        raise UsageError("usage", f"the compliance checker has no {usage!r} rulesets")
    if ruleset is None:
        ruleset = infer_ruleset(folder, usage)
        if ruleset is None:
            raise UsageError(
                str(folder),
                f"cannot tell which {usage} ruleset the logs follow; pass one of "
                f"{', '.join(known)}",
            )
    if ruleset not in known:
        raise UsageError("ruleset", f"{ruleset!r} is not one of {', '.join(known)}")
    return ruleset


def _benchmark_of(folder: Path, facts: Sequence[_LogFacts]) -> str:
    named = {f.benchmark for f in facts if f.benchmark}
    if len(named) == 1:
        return named.pop()
    if len(named) > 1:
        raise GreenperfError(str(folder), f"logs name different benchmarks: {sorted(named)}")
    # What the official summarizer uses: the folder name, with its one alias.
    return "maskrcnn" if folder.name == "mask" else folder.name


def _read_scaling_factor(folder: Path) -> float:
    """A review committee's ``scaling.json`` multiplies the score, as in the official tool."""
    scaling_file = folder / SCALING_FILE
    if not scaling_file.is_file():
        return 1.0
    try:
        factor = json.loads(scaling_file.read_text())["scaling_factor"]
    except (ValueError, KeyError, TypeError) as err:
        raise GreenperfError(str(scaling_file), f"not a scaling file: {err}") from err
    if not isinstance(factor, int | float) or isinstance(factor, bool):
        raise GreenperfError(str(scaling_file), "scaling_factor is not a number")
    return float(factor)


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
