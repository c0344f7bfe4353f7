"""MLLOG logs through ``mlperf_logging.mllog``: one fresh logger and file per run.

The package's shared ``mllog.config(filename=...)`` adds an append-mode handler
to a process-wide logger, so a second run would also write into the first
run's file. Each run here gets its own ``logging.Logger`` with a write-mode
handler, closed when the run ends.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlperf_logging.mllog import constants, mllog

_serial = itertools.count()


def plain(value: Any) -> Any:
    """A JSON-plain version of ``value``: tensors and numpy scalars become numbers."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class RunLog:
    """An MLLOG file for one run of one phase. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._logger = logging.getLogger(f"greenperf.mllog.{next(_serial)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._handler = logging.FileHandler(path, mode="w", encoding="utf-8")
        self._handler.setLevel(logging.INFO)
        self._logger.addHandler(self._handler)
        self._ml = mllog.MLLogger(logger=self._logger, default_stack_offset=2)

    def event(self, key: str, value: Any = None, metadata: Mapping[str, Any] | None = None) -> None:
        self._ml.event(key=key, value=plain(value), metadata=plain(dict(metadata or {})))

    def start(self, key: str, value: Any = None, metadata: Mapping[str, Any] | None = None) -> None:
        self._ml.start(key=key, value=plain(value), metadata=plain(dict(metadata or {})))

    def end(self, key: str, value: Any = None, metadata: Mapping[str, Any] | None = None) -> None:
        self._ml.end(key=key, value=plain(value), metadata=plain(dict(metadata or {})))

    def close(self) -> None:
        self._handler.flush()
        self._handler.close()
        self._logger.removeHandler(self._handler)

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullLog:
    """Stands in for ``RunLog`` on ranks other than 0: only rank 0 writes the log."""

    def event(self, *args: Any, **kwargs: Any) -> None:
        return None

    start = end = event

    def __enter__(self) -> NullLog:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# Keys the official training rules require in every log (ruleset 6.x); kept
# here so the driver logs them all and tests can name them.
SUBMISSION_KEYS = (
    constants.SUBMISSION_BENCHMARK,
    constants.SUBMISSION_ORG,
    constants.SUBMISSION_DIVISION,
    constants.SUBMISSION_STATUS,
    constants.SUBMISSION_PLATFORM,
)
