"""The noise guard: how much CPU other processes used while we were timing.

On a shared 2-core machine a second busy process slowed 2-thread PyTorch
training 20x (shared/research/workloads.md, section 0), so every timed window
records *foreign cores*: machine-wide busy CPU time from /proc/stat minus this
process's own CPU time, divided by wall time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
DEFAULT_THRESHOLD = 0.25  # foreign cores above which a run is flagged contended
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_seconds(stat_path: Path = PROC_STAT) -> float | None:
    """Machine-wide busy CPU seconds (all fields but idle and iowait)."""
    try:
        first = stat_path.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is
    # already counted in user, so only the first 8 fields are summed.
    fields = values[:8] + [0] * (8 - len(values[:8]))
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / _TICKS


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class ContentionReading:
    foreign_cores: float | None
    wall_seconds: float
    threshold: float

    @property
    def contended(self) -> bool:
        return self.foreign_cores is not None and self.foreign_cores > self.threshold

    def to_dict(self) -> dict[str, object]:
        return {
            "foreign_cores": None if self.foreign_cores is None else round(self.foreign_cores, 4),
            "threshold": self.threshold,
            "contended": self.contended,
            "source": "/proc/stat busy time minus own CPU time" if self.foreign_cores is not None
            else "unavailable (/proc/stat unreadable)",
        }


class ContentionWindow:
    """Measures foreign CPU use between ``begin()`` and ``end()``."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, stat_path: Path = PROC_STAT) -> None:
        self.threshold = threshold
        self.stat_path = stat_path
        self._start: tuple[float, float | None, float] | None = None

    def begin(self) -> None:
        self._start = (time.perf_counter(), _busy_seconds(self.stat_path), _own_cpu_seconds())

    def own_cpu_seconds(self) -> float:
        """CPU seconds this process used since ``begin()``."""
        if self._start is None:
            raise RuntimeError("ContentionWindow used before begin()")
        return _own_cpu_seconds() - self._start[2]

    def end(self, sibling_cpu_seconds: float = 0.0) -> ContentionReading:
        """``sibling_cpu_seconds``: CPU time of cooperating processes (other ranks of the
        same run on this host), which is not foreign load."""
        if self._start is None:
            raise RuntimeError("ContentionWindow.end() before begin()")
        t0, busy0, own0 = self._start
        wall = time.perf_counter() - t0
        busy1 = _busy_seconds(self.stat_path)
        own1 = _own_cpu_seconds()
        if busy0 is None or busy1 is None or wall <= 0:
            return ContentionReading(None, wall, self.threshold)
        own = (own1 - own0) + sibling_cpu_seconds
        foreign = max(0.0, (busy1 - busy0) - own) / wall
        return ContentionReading(foreign, wall, self.threshold)


def wait_until_quiet(
    max_foreign_cores: float = 0.1,
    quiet_seconds: float = 2.0,
    timeout: float = 120.0,
    stat_path: Path = PROC_STAT,
) -> float | None:
    """Block until other processes use < ``max_foreign_cores`` for ``quiet_seconds``.

    Returns the last measured foreign load, or None when /proc/stat is
    unreadable. Gives up after ``timeout`` seconds (the caller records that).
    """
    deadline = time.monotonic() + timeout
    last: float | None = None
    while True:
        window = ContentionWindow(stat_path=stat_path)
        window.begin()
        time.sleep(quiet_seconds)
        last = window.end().foreign_cores
        if last is None or last < max_foreign_cores or time.monotonic() > deadline:
            return last
