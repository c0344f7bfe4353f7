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

Bad lines: the official parser (``mlp_parser``) skips an MLLOG line it cannot parse and
records it as a parse error; the summarizer then drops the run (``'Parse error'``). Its
parser only catches ``ValueError``, so a line that is not an object, lacks a field or nests
too deeply crashes it instead; greenperf treats every such line the official way: skipped,
and its run dropped. So is a line whose ``time_ms`` is not a finite number of milliseconds
in [0, 2**53] (``"NaN"``, ``1e400``, ``true``), and a run whose ``run_stop`` is not after its
``run_start``: the official parser would turn them into absurd or NaN scores.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from greenperf.compliance import installed_rulesets
from greenperf.errors import GreenperfError, UsageError

MLLOG_TOKEN = ":::MLLOG "
RESULT_GLOB = "result_*.txt"
SCALING_FILE = "scaling.json"
COMPLIANCE_TIMEOUT_S = 300.0
# Official MLLOG lines are under 2 kB. A longer line is read in pieces and counted as bad:
# the official parser's re.sub(".*" + token) takes time quadratic in a line's length (30 s
# for a 200 kB line).
MAX_LINE_CHARS = 1 << 16
# Timestamps are epoch milliseconds (1.7e12 in 2024); 2**53 keeps them exact as floats.
MAX_TIME_MS = float(2**53)
# scaling.json and systems/*.json are a few hundred bytes.
MAX_JSON_FILE_BYTES = 1 << 20
_BENCHMARK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
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
    bad_lines: int = 0
    first_bad: str | None = None


@dataclass(frozen=True)
class MllogRecord:
    """One parsed ``:::MLLOG`` line."""

    lineno: int
    key: str
    time_ms: float
    value: Any
    metadata: dict[str, Any]
    event_type: str


@dataclass(frozen=True)
class BadLine:
    """An ``:::MLLOG`` line the official parser would skip (or crash on), and why."""

    lineno: int
    reason: str


def finite_number(value: Any) -> float | None:
    """A JSON number as a finite float; None for bools, NaN, infinities and strings."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float's range
        return None
    return number if math.isfinite(number) else None


def iter_mllog(path: Path) -> Iterator[MllogRecord | BadLine]:
    """The ``:::MLLOG`` lines of a log, parsed, as the official parser reads them.

    latin-1 and universal newlines, as ``mlp_parser``; the JSON after the last token. One
    line at a time, each at most ``MAX_LINE_CHARS``, so memory stays bounded whatever the
    size of the file.
    """
    try:
        handle = open(path, encoding="latin-1")
    except OSError as exc:
        raise GreenperfError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    with handle:
        lineno = 0
        while line := _read_line(handle, path):
            lineno += 1
            if len(line) >= MAX_LINE_CHARS and not line.endswith("\n"):
                if _skip_rest_of_line(handle, path, line):
                    yield BadLine(lineno, f"longer than {MAX_LINE_CHARS:,} characters")
                continue
            if MLLOG_TOKEN in line:
                yield _parse_mllog_line(line, lineno)


def _read_line(handle: Any, path: Path, limit: int = MAX_LINE_CHARS) -> str:
    try:
        return handle.readline(limit)
    except OSError as exc:
        raise GreenperfError(str(path), f"cannot read: {exc.strerror or exc}") from exc


def _skip_rest_of_line(handle: Any, path: Path, start: str) -> bool:
    """Read past the rest of an over-long line; whether it holds the MLLOG token."""
    found = MLLOG_TOKEN in start
    tail = start[-len(MLLOG_TOKEN) :]
    while piece := _read_line(handle, path):
        found = found or MLLOG_TOKEN in tail + piece
        if piece.endswith("\n"):
            break
        tail = piece[-len(MLLOG_TOKEN) :]
    return found


def _parse_mllog_line(line: str, lineno: int) -> MllogRecord | BadLine:
    text = line[line.rindex(MLLOG_TOKEN) + len(MLLOG_TOKEN) :].strip()
    try:
        record = json.loads(text)
    except RecursionError:
        return BadLine(lineno, "JSON nested too deeply")
    except ValueError as exc:
        return BadLine(lineno, f"not JSON ({_short(str(exc))})")
    if not isinstance(record, dict):
        return BadLine(lineno, "not a JSON object")
    for field in ("time_ms", "key", "value", "metadata"):
        if field not in record:
            return BadLine(lineno, f"no {field!r} field")
    raw_time = record["time_ms"]
    try:  # float(): the official parser accepts "123" too
        time_ms = float(raw_time) if isinstance(raw_time, str) else finite_number(raw_time)
    except ValueError:
        time_ms = None
    if time_ms is None or not 0.0 <= time_ms <= MAX_TIME_MS:
        return BadLine(lineno, f"time_ms {_shown(raw_time)} is not a time in ms (0 to 2**53)")
    metadata = record["metadata"]
    return MllogRecord(lineno, str(record["key"]), time_ms, record["value"],
                       metadata if isinstance(metadata, dict) else {},
                       str(record.get("event_type", "")))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable(text: str) -> str:
    """Text from a log, safe to print: control characters (terminal escapes) become '?'."""
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text)


def _shown(value: Any) -> str:
    """A JSON value for a message: short scalars as written, containers by their kind."""
    if value is None or isinstance(value, bool | int | float | str):
        return _short(json.dumps(value))
    return "a JSON array" if isinstance(value, list) else "a JSON object"


def read_json_file(path: Path, what: str) -> Any:
    """A small JSON file (scaling.json, systems/*.json), with one-line errors."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_JSON_FILE_BYTES + 1)
    except OSError as exc:
        raise GreenperfError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_JSON_FILE_BYTES:
        raise GreenperfError(str(path), f"over {MAX_JSON_FILE_BYTES:,} bytes: not a {what}")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError as exc:
        raise GreenperfError(str(path), f"not a {what}: JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise GreenperfError(str(path), f"not a {what}: {_short(str(exc), 120)}") from exc


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
    benchmark = benchmark or _benchmark_of(folder, facts)
    with tempfile.TemporaryDirectory(prefix="greenperf-cc-") as scratch:
        # A log with bad lines is dropped whatever the checker says (the official summarizer
        # drops it for its parse errors), and bad lines are what make the checker crash or
        # crawl, so it is not run on them.
        verdicts = {f: _run_compliance(f, usage, ruleset, config, Path(scratch))
                    if not facts[f].bad_lines else
                    (False, ("not run: the log has MLLOG lines the official parser cannot "
                             "read",))
                    for f in files}

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
    scaled = average * scaling_factor
    if not math.isfinite(scaled):
        return None, (f"the score {average!r} minutes times the scaling factor "
                      f"{scaling_factor!r} is not a finite number"), ()
    return scaled, None, tuple(run.file for run in counted)


def _run_score(
    file: Path, facts: _LogFacts, compliance_ok: bool, messages: tuple[str, ...]
) -> RunScore:
    minutes = None
    start, stop = facts.run_start_ms, facts.run_stop_ms
    problems = []
    if not compliance_ok:
        problems.append("fails the compliance checker")
    if facts.bad_lines:
        # The official summarizer drops a run whose log had parse errors.
        problems.append(f"{facts.bad_lines} MLLOG line(s) cannot be parsed ({facts.first_bad})")
    if start is None or stop is None:
        problems.append("run_start or run_stop not recorded")
    elif stop <= start:
        problems.append(f"run_stop ({stop:.0f} ms) is not after run_start ({start:.0f} ms)")
    else:
        minutes = (stop - start) / 60 / 1000
        if facts.status != "success":
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
    run_start = run_stop = None
    status = "incomplete"
    benchmark = None
    parsed = bad = 0
    first_bad = None
    for record in iter_mllog(file):
        if isinstance(record, BadLine):
            bad += 1
            first_bad = first_bad or f"line {record.lineno}: {record.reason}"
            continue
        parsed += 1
        key = record.key
        if key == "submission_benchmark" and benchmark is None and isinstance(record.value, str):
            benchmark = record.value
        if run_start is not None and run_stop is not None:
            continue
        if key == "run_start":
            run_start = record.time_ms
        elif key == "run_stop":
            run_stop = record.time_ms
            found = record.metadata.get("status")
            status = _printable(_short(str(found))) if found is not None else "unknown"
    if parsed == 0:
        raise GreenperfError(str(file), "no parseable ':::MLLOG' line: not an MLLOG result log")
    return _LogFacts(run_start, run_stop, status, benchmark, bad, first_bad)


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
        # Its parser crashes on lines it cannot index (a list, a missing field, deep
        # nesting): a log it cannot check is not shown compliant, so the run is dropped.
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return False, (f"the official compliance checker crashed on this log: {_short(last, 200)}",)
    messages = [
        _printable(part.strip())
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


def _benchmark_of(folder: Path, facts: dict[Path, _LogFacts]) -> str:
    named = {f.benchmark for f in facts.values() if f.benchmark}
    if len(named) > 1:
        which: dict[str | None, str] = {}
        for file, fact in facts.items():
            which.setdefault(fact.benchmark, file.name)
        raise GreenperfError(str(folder), "logs name different benchmarks: " + ", ".join(
            f"{_shown(name)} ({which[name]})" for name in sorted(named)))
    # Else what the official summarizer uses: the folder name, with its one alias.
    name = named.pop() if named else "maskrcnn" if folder.name == "mask" else folder.name
    # It names files and folders of an import, and a ruleset file to read.
    if not _BENCHMARK_NAME.match(name):
        raise GreenperfError(str(folder), f"submission_benchmark {_short(repr(name))} is not a "
                                          "benchmark name (letters, digits, '_', '.', '-')")
    return name


def _read_scaling_factor(folder: Path) -> float:
    """A review committee's ``scaling.json`` multiplies the score, as in the official tool."""
    scaling_file = folder / SCALING_FILE
    if not scaling_file.is_file():
        return 1.0
    doc = read_json_file(scaling_file, "scaling file")
    factor = doc.get("scaling_factor") if isinstance(doc, dict) else None
    number = finite_number(factor)
    # The official tool multiplies by anything; a zero, negative or non-finite factor would
    # make an absurd score, so it is refused (one that overflows the score gives no score).
    if number is None or number <= 0:
        raise GreenperfError(f"{scaling_file}: field scaling_factor",
                             f"{_shown(factor)} is not a positive finite number")
    return number


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
