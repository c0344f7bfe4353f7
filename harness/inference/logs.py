"""Reading what LoadGen wrote: the summary, the detail log (through mlperf-logging's
own parser) and the accuracy log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from greenperf.errors import GreenperfError

SUMMARY_FILE = "mlperf_log_summary.txt"
DETAIL_FILE = "mlperf_log_detail.txt"
ACCURACY_FILE = "mlperf_log_accuracy.json"
TRACE_FILE = "mlperf_log_trace.json"

# LoadGen writes ":::MLLOG {json}" lines; every mlp_parser ruleset from 0.7.0 on reads
# that form. The newest one the installed package ships is used.
_PARSER_RULESET = "6.1.0"

_RESULT_LINE = re.compile(r"^Result is\s*:\s*(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class LogPaths:
    folder: Path

    @property
    def summary(self) -> Path:
        return self.folder / SUMMARY_FILE

    @property
    def detail(self) -> Path:
        return self.folder / DETAIL_FILE

    @property
    def accuracy(self) -> Path:
        return self.folder / ACCURACY_FILE

    @property
    def trace(self) -> Path:
        return self.folder / TRACE_FILE

    def to_dict(self) -> dict[str, str]:
        return {
            "folder": str(self.folder),
            "summary": str(self.summary),
            "detail": str(self.detail),
            "accuracy": str(self.accuracy),
        }


def summary_verdict(path: Path) -> str | None:
    """``VALID``/``INVALID`` from the summary's "Result is :" line; None in accuracy mode."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise GreenperfError(str(path), f"LoadGen summary unreadable: {exc.strerror}") from None
    match = _RESULT_LINE.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True)
class DetailLog:
    """The detail log's keys (the last value of each), plus its errors and warnings."""

    values: dict[str, Any]
    errors: list[str]
    warnings: list[str]
    line_count: int

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def parse_detail(path: Path) -> DetailLog:
    """Parse ``mlperf_log_detail.txt`` with mlperf-logging's compliance parser."""
    from mlperf_logging.compliance_checker import mlp_parser

    if not path.is_file():
        raise GreenperfError(str(path), "LoadGen wrote no detail log")
    loglines, failures = mlp_parser.parse_file(str(path), ruleset=_PARSER_RULESET)
    if failures:
        line, why = failures[0]
        raise GreenperfError(
            str(path),
            f"{len(failures)} line(s) the MLPerf parser rejects, first: {why}: {line[:80]}",
        )
    values: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for entry in loglines:
        value = entry.value["value"]
        metadata = entry.value.get("metadata") or {}
        values[entry.key] = value
        if metadata.get("is_error"):
            errors.append(f"{entry.key}: {value}")
        elif metadata.get("is_warning"):
            warnings.append(f"{entry.key}: {value}")
    return DetailLog(values=values, errors=errors, warnings=warnings, line_count=len(loglines))


def read_accuracy_log(
    path: Path, dtype: np.dtype | None, row_shape: tuple[int, ...] | None
) -> dict[int, np.ndarray]:
    """Decode the hex response bytes LoadGen logged, keyed by QSL sample index.

    Empty entries (samples answered empty after a failure) are left out, so a
    scorer sees them as missing predictions.
    """
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GreenperfError(str(path), f"accuracy log unreadable: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise GreenperfError(str(path), f"accuracy log is not JSON: {exc.msg}") from None
    predictions: dict[int, np.ndarray] = {}
    if not entries:
        return predictions
    if dtype is None or row_shape is None:
        raise GreenperfError(str(path), "has responses but the model never produced a row")
    row_bytes = int(np.dtype(dtype).itemsize * int(np.prod(row_shape, dtype=np.int64)))
    for entry in entries:
        raw = bytes.fromhex(entry["data"])
        if not raw:
            continue
        if len(raw) != row_bytes:
            raise GreenperfError(
                str(path),
                f"qsl_idx {entry['qsl_idx']} holds {len(raw)} bytes, expected {row_bytes}",
            )
        predictions[int(entry["qsl_idx"])] = np.frombuffer(raw, dtype=dtype).reshape(row_shape)
    return predictions
