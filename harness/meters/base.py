"""The shared vocabulary of every energy meter: readings, window results and the meter contract.

A meter measures one component (``gpu``, ``cpu``, ``ram``) between ``begin(name)`` and
``end(name)``, Zeus-style: windows are keyed by name and may nest or overlap. Every reading says
where its figure came from (``source``), whether it was ``measured`` or ``estimated`` (``label``)
and, for estimates, the formula with the numbers used, so a result file never hides how a joule
was obtained.
"""

from __future__ import annotations

import bisect
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

# The labels and their combine rule live in greenperf.labels; every meter names them through here.
from greenperf.labels import ESTIMATED as ESTIMATED
from greenperf.labels import MEASURED as MEASURED
from greenperf.labels import PARTLY_ESTIMATED as PARTLY_ESTIMATED
from greenperf.labels import combine

# Plots of power over time need a few hundred points at most; more only bloats result files.
MAX_TRACE_POINTS = 500


@dataclass
class EnergyReading:
    """One meter's figure for one window."""

    component: str
    source: str
    label: str
    joules: float
    seconds: float
    per_device: dict[str, float] = field(default_factory=dict)
    formula: str | None = None
    power_trace: list[tuple[float, float]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # True when part of the window could not be measured (a device lost, a counter unreadable),
    # so ``joules`` understates the truth.
    lower_bound: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "source": self.source,
            "label": self.label,
            "joules": float(self.joules),
            "seconds": float(self.seconds),
            "per_device": {name: float(j) for name, j in self.per_device.items()},
            "formula": self.formula,
            "power_trace": [[round(t, 3), round(w, 3)] for t, w in self.power_trace],
            "details": _plain(self.details),
            "notes": list(self.notes),
            "lower_bound": self.lower_bound,
        }


@dataclass
class WindowMeasurement:
    """What ``EnergyMonitor.end_window`` returns: every meter's reading for one named window."""

    name: str
    seconds: float
    readings: list[EnergyReading]
    notes: list[str] = field(default_factory=list)

    @property
    def total_joules(self) -> float:
        return sum(r.joules for r in self.readings)

    @property
    def label(self) -> str:
        """``partly estimated`` when some readings were measured and some not; a window that
        no meter read is an estimate (nothing in it was measured)."""
        if not self.readings:
            return ESTIMATED
        return combine((r.label for r in self.readings), keep_partly=True)

    @property
    def lower_bound(self) -> bool:
        return any(r.lower_bound for r in self.readings)

    def joules_by_component(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for reading in self.readings:
            totals[reading.component] = totals.get(reading.component, 0.0) + reading.joules
        return totals

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": float(self.seconds),
            "total_joules": float(self.total_joules),
            "label": self.label,
            "lower_bound": self.lower_bound,
            "joules_by_component": self.joules_by_component(),
            "readings": [r.to_dict() for r in self.readings],
            "notes": list(self.notes),
        }


@dataclass
class UnavailableMeter:
    """A meter that could not run on this machine, and why (recorded in the result file)."""

    component: str
    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"component": self.component, "source": self.source, "reason": self.reason}


class MeterUnavailable(Exception):
    """Raised by a meter's constructor when its sensor cannot be used here; carries the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Meter(ABC):
    """One component's meter. Windows are keyed by name and may nest or overlap."""

    component: str
    source: str

    @abstractmethod
    def begin(self, name: str) -> None:
        """Start a window called ``name``."""

    @abstractmethod
    def end(self, name: str) -> EnergyReading:
        """Close the window ``name`` and return its reading."""

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release background threads and library handles."""


class PeriodicSampler:
    """Calls ``tick`` every ``interval_s`` seconds on a daemon thread while started.

    Meters use it to take power samples or to poll counters that could wrap between a window's
    begin and end. ``start``/``stop`` are reference counted so overlapping windows share one
    thread, and the thread only runs while at least one window is open.
    """

    def __init__(self, tick: Callable[[], None], interval_s: float, name: str) -> None:
        if interval_s <= 0:
            raise ValueError(f"sampling interval must be positive, got {interval_s}")
        self._tick = tick
        self._interval_s = interval_s
        self._name = name
        self._users = 0
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def start(self) -> None:
        with self._guard:
            self._users += 1
            if self._thread is not None:
                return
            self._stop_event = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop_event,), name=self._name, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        with self._guard:
            self._users = max(0, self._users - 1)
            if self._users or self._thread is None:
                return
            thread, self._thread = self._thread, None
            self._stop_event.set()
        thread.join()

    def shutdown(self) -> None:
        with self._guard:
            self._users = 0
            thread, self._thread = self._thread, None
            self._stop_event.set()
        if thread is not None:
            thread.join()

    def _run(self, stop_event: threading.Event) -> None:
        while not stop_event.wait(self._interval_s):
            self._tick()


class SampledMeter(Meter):
    """A meter with a background sampler that runs while any of its windows is open.

    Subclasses implement ``_sample`` (take one sample and store it), ``_begin_state`` (take a
    fresh sample and return what the window must remember) and ``_end_reading`` (take a fresh
    sample and compute the reading). All three run under ``self._lock``, shared with the
    sampler thread, so they see a consistent view of the samples.
    """

    def __init__(self, interval_s: float, thread_name: str) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, Any] = {}
        self._sampler = PeriodicSampler(self.sample_now, interval_s, thread_name)

    @property
    def sample_interval_s(self) -> float:
        return self._sampler.interval_s

    def begin(self, name: str) -> None:
        with self._lock:
            if name in self._windows:
                raise ValueError(f"energy window {name!r} is already open")
            self._windows[name] = self._begin_state()
        # Started outside the lock: the sampler thread needs the lock for its first tick.
        self._sampler.start()

    def end(self, name: str) -> EnergyReading:
        error: Exception | None = None
        # One lock span from pop to pruning, so another window's end cannot drop our samples.
        with self._lock:
            if name not in self._windows:
                raise ValueError(f"energy window {name!r} is not open")
            state = self._windows.pop(name)
            try:
                reading = self._end_reading(state)
            except Exception as err:  # the sampler must still be released below
                error = err
            self._forget_unneeded_samples()
        # Outside the lock: stop() joins a thread that may be waiting for the lock.
        self._sampler.stop()
        if error is not None:
            raise error
        return reading

    def close(self) -> None:
        self._sampler.shutdown()

    def sample_now(self) -> None:
        """Take one sample now; the sampler thread calls this every interval."""
        with self._lock:
            self._sample()

    def _forget_unneeded_samples(self) -> None:
        """Drop samples older than every open window so long runs do not grow memory."""
        starts = [self._window_start(state) for state in self._windows.values()]
        self._drop_samples_before(min(starts) if starts else math.inf)

    @abstractmethod
    def _sample(self) -> None: ...

    @abstractmethod
    def _begin_state(self) -> Any: ...

    @abstractmethod
    def _end_reading(self, state: Any) -> EnergyReading: ...

    @abstractmethod
    def _window_start(self, state: Any) -> float: ...

    @abstractmethod
    def _drop_samples_before(self, t: float) -> None: ...


class TimeSeries:
    """Time-ordered samples with slicing by time; appended from a sampler thread."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: list[Any] = []

    def append(self, t: float, value: Any) -> None:
        # Samples arrive in time order from one lock-holding writer; a clock tie keeps order.
        self.times.append(t)
        self.values.append(value)

    def between(self, t0: float, t1: float) -> list[tuple[float, Any]]:
        lo = bisect.bisect_left(self.times, t0)
        hi = bisect.bisect_right(self.times, t1)
        return list(zip(self.times[lo:hi], self.values[lo:hi], strict=True))

    def drop_before(self, t: float) -> None:
        cut = bisect.bisect_left(self.times, t)
        if cut:
            del self.times[:cut]
            del self.values[:cut]

    def clear(self) -> None:
        self.times.clear()
        self.values.clear()

    def __len__(self) -> int:
        return len(self.times)


def trapezoid_joules(points: list[tuple[float, float]]) -> float:
    """Integrate (seconds, watts) samples with the trapezoid rule."""
    return sum((t1 - t0) * (w0 + w1) / 2.0 for (t0, w0), (t1, w1) in pairwise(points))


def rate_trace(
    points: list[tuple[float, float]], t0: float, watts_per_unit_rate: float = 1.0
) -> list[tuple[float, float]]:
    """Power trace from a cumulative counter: (mid-interval seconds since ``t0``, watts)."""
    return [
        ((ta + tb) / 2 - t0, watts_per_unit_rate * (ub - ua) / (tb - ta))
        for (ta, ua), (tb, ub) in pairwise(points)
        if tb > ta
    ]


def downsample_trace(
    points: list[tuple[float, float]], max_points: int = MAX_TRACE_POINTS
) -> list[tuple[float, float]]:
    """Average consecutive samples into at most ``max_points`` buckets (keeps the mean power)."""
    if len(points) <= max_points:
        return list(points)
    size = math.ceil(len(points) / max_points)
    out = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        out.append(
            (
                sum(t for t, _ in bucket) / len(bucket),
                sum(w for _, w in bucket) / len(bucket),
            )
        )
    return out


def _plain(value: Any) -> Any:
    """Turn details into JSON-ready plain values (tuples to lists, numbers to float/int)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)
