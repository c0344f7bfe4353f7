"""The noise guard: how much CPU other processes used while we were timing.

On a shared 2-core machine one busy process slowed 2-thread PyTorch training
2.3-2.9x, and up to 100x in noisier runs (libgomp's threads spin-wait at every
barrier, and a team member that the scheduler has parked stalls the rest;
benchmarks/bench_threads_under_load.py), so every timed window records
*foreign cores*: machine-wide busy CPU time from /proc/stat minus this
process's own CPU time, divided by wall time.

The same reading chooses the default torch thread count (one per idle core,
``choose_threads``) and feeds the live "machine busy" warning (``LiveLoad``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
DEFAULT_THRESHOLD = 0.25  # foreign cores above which a run is flagged contended
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_seconds(stat_path: Path = PROC_STAT) -> float | None:
    """Machine-wide busy CPU seconds (all fields but idle and iowait)."""
    try:
        return busy_seconds_of(stat_path.read_text())
    except OSError:
        return None


def busy_seconds_of(stat_text: str) -> float | None:
    """Busy CPU seconds in the text of /proc/stat (None when it is not one)."""
    try:
        first = stat_text.splitlines()[0].split()
    except IndexError:
        return None
    if not first or first[0] != "cpu":
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
        return ContentionReading(foreign_cores(busy1 - busy0, own, wall), wall, self.threshold)


def foreign_cores(machine_busy_seconds: float, own_cpu_seconds: float,
                  wall_seconds: float) -> float:
    """Cores' worth of CPU that other processes used over a window."""
    return max(0.0, machine_busy_seconds - own_cpu_seconds) / wall_seconds


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


def foreign_cores_now(seconds: float = 0.5, stat_path: Path = PROC_STAT) -> float | None:
    """Other processes' CPU use over a short sample (None when /proc/stat is unreadable)."""
    window = ContentionWindow(stat_path=stat_path)
    window.begin()
    time.sleep(seconds)
    return window.end().foreign_cores


def usable_cpus() -> int:
    """Logical CPUs this process may run on (affinity and cpusets included)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadChoice:
    """The torch thread count for a run, and why (recorded in the result's config)."""

    threads: int
    reason: str
    foreign_cores: float | None = None


def choose_threads(cpus: int, foreign_cores: float | None, limit: int | None = None,
                   tolerance: float = DEFAULT_THRESHOLD) -> ThreadChoice:
    """One torch thread per core that other processes leave idle, at least one.

    A foreign load up to ``tolerance`` (the contention threshold) is noise (daemons,
    the shell); above it each started foreign core counts as taken, because a thread
    team sharing a core with a busy process stalls as a whole (2 threads ran 2.3-2.9x
    slower than 1 next to one busy process, benchmarks/bench_threads_under_load.py),
    while 1 thread loses at most the second core's share. ``limit`` caps it (torch's
    own default: physical cores, not hyper-threads).
    """
    cap = max(1, min(cpus, limit) if limit else cpus)
    if foreign_cores is None:
        return ThreadChoice(cap, f"auto: {cap} threads, machine load unknown "
                                 "(/proc/stat unreadable)")
    taken = math.ceil(foreign_cores - tolerance) if foreign_cores > tolerance else 0
    idle = max(0, cpus - taken)
    threads = max(1, min(cap, idle))
    return ThreadChoice(threads, f"auto: {idle} of {cpus} cores idle, "
                                 f"{foreign_cores:.2f} used by other processes", foreign_cores)


def busy_advice(foreign_cores: float, threads: int) -> str:
    """What the progress display says when other processes compete for the CPU."""
    fix = ("use --threads 1 or --wait-quiet" if threads > 1
           else "use --wait-quiet, or a quiet machine")
    return (f"machine busy: {foreign_cores:.1f} other cores in use - results will be flagged "
            f"contended; {fix}")


class LiveLoad:
    """Foreign cores since the previous reading, for the progress display.

    Reads /proc/stat at most once per ``min_interval`` seconds (a read costs tens of
    microseconds; shorter windows would also be too coarse for 10 ms clock ticks);
    in between it returns the previous reading.
    """

    def __init__(self, min_interval: float = 1.0, stat_path: Path = PROC_STAT,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.min_interval = min_interval
        self.stat_path = stat_path
        self.clock = clock
        self._window = ContentionWindow(stat_path=stat_path)
        self._window.begin()
        self._since = clock()
        self.last: float | None = None

    def read(self) -> float | None:
        now = self.clock()
        if now - self._since < self.min_interval:
            return self.last
        self.last = self._window.end().foreign_cores
        self._window.begin()
        self._since = now
        return self.last
