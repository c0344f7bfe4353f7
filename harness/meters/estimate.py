"""Estimated CPU and RAM energy, for machines whose sensors cannot be read.

Both figures are labelled ``estimated`` and carry their formula with the numbers used.

CPU: ``energy = watts per logical CPU x CPU-seconds used by this process``, where watts per
logical CPU is the package TDP divided by its hardware threads. This equals
``TDP x (process CPU seconds / logical CPUs)`` for a whole package, and stays right on a VM
that sees a few vCPUs of a large server chip. Where the TDP comes from, in order:

1. ``tdp_watts`` given by the user: the TDP of all CPUs this OS sees, divided by
   ``os.cpu_count()``;
2. the shipped ``cpu_tdp.json``, matched on ``/proc/cpuinfo``'s model name;
3. otherwise ``DEFAULT_WATTS_PER_LOGICAL_CPU``: 12 W, Green Algorithms' per-core TDP for an
   unknown CPU ("Any" in data/latest/TDP_cpu.csv of github.com/GreenAlgorithms/
   green-algorithms-tool; Lannelongue et al., Advanced Science 2021). Applied per logical CPU,
   it overstates a hyper-threaded core, which errs on the side of not under-reporting.

RAM: ``energy = watts per GiB x resident memory of this process (time-averaged) x seconds``,
with 0.375 W/GiB: CodeCarbon's long-standing "3 W per 8 GB" (codecarbon/external/ram.py
before v3, after Crucial's memory power guide); Green Algorithms used 0.3725 W/GB (v1 to v2.2
referenceValues.csv), the same within 1%.

Both estimates cover this process only (``details["scope"] == "process"``): CPU seconds are
this process's and its reaped children's user+system time; DataLoader workers still running
at window end are not counted.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from greenperf.errors import GreenperfError
from greenperf.meters.base import (
    ESTIMATED,
    EnergyReading,
    SampledMeter,
    TimeSeries,
    downsample_trace,
    rate_trace,
    trapezoid_joules,
)

DEFAULT_WATTS_PER_LOGICAL_CPU = 12.0
DEFAULT_WATTS_SOURCE = (
    "Green Algorithms' per-core TDP for an unknown CPU (12 W), applied per logical CPU"
)
RAM_WATTS_PER_GIB = 0.375
RAM_WATTS_SOURCE = "CodeCarbon's 3 W per 8 GB (0.375 W/GiB); Green Algorithms uses 0.3725 W/GB"
GIB = 1024**3
CPUINFO_PATH = Path("/proc/cpuinfo")
DEFAULT_SAMPLE_INTERVAL_S = 1.0


def process_cpu_seconds() -> float:
    """User+system CPU time of this process and its reaped children, in seconds."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def process_rss_bytes() -> int:
    """Resident memory of this process now (falls back to the lifetime peak without /proc)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is in KiB on Linux and in bytes on macOS.
        return peak if sys.platform == "darwin" else peak * 1024


def cpu_model_name(cpuinfo_path: Path = CPUINFO_PATH) -> str | None:
    """The first ``model name`` in /proc/cpuinfo, or None where there is none."""
    try:
        text = cpuinfo_path.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return None


def _normalise_model(name: str) -> str:
    name = re.sub(r"\((?:R|TM|r|tm)\)", " ", name)
    name = re.sub(r"@\s*[\d.]+\s*[GM]Hz", " ", name, flags=re.IGNORECASE)
    name = re.sub(r"\bCPU\b", " ", name, flags=re.IGNORECASE)
    return " ".join(name.lower().split())


@dataclass(frozen=True)
class CpuTdpEntry:
    model: str
    tdp_watts: float
    cores: int
    threads: int
    source: str


def load_tdp_table(path: Path | None = None) -> list[CpuTdpEntry]:
    """Read the CPU TDP table (the shipped ``cpu_tdp.json`` unless ``path`` is given)."""
    if path is None:
        text = resources.files("greenperf.meters").joinpath("cpu_tdp.json").read_text()
        where = "harness/meters/cpu_tdp.json"
    else:
        text = path.read_text()
        where = str(path)
    try:
        rows = json.loads(text)["cpus"]
        return [
            CpuTdpEntry(
                model=row["model"],
                tdp_watts=float(row["tdp_watts"]),
                cores=int(row["cores"]),
                threads=int(row["threads"]),
                source=row["source"],
            )
            for row in rows
        ]
    except (ValueError, KeyError, TypeError) as err:
        raise GreenperfError(where, f"not a valid CPU TDP table ({err!r})") from err


def match_cpu_tdp(model_name: str, table: list[CpuTdpEntry]) -> CpuTdpEntry | None:
    """The table entry whose model appears as whole words in ``model_name`` (longest wins)."""
    haystack = _normalise_model(model_name)
    best: CpuTdpEntry | None = None
    for entry in table:
        needle = _normalise_model(entry.model)
        if re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack):
            if best is None or len(needle) > len(_normalise_model(best.model)):
                best = entry
    return best


@dataclass
class CpuPowerBasis:
    """Watts charged per busy logical CPU, and how that figure was chosen."""

    watts_per_logical_cpu: float
    basis: str
    details: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def choose_cpu_power(
    tdp_watts: float | None = None,
    *,
    cpuinfo_path: Path = CPUINFO_PATH,
    logical_cpus: int | None = None,
    table: list[CpuTdpEntry] | None = None,
) -> CpuPowerBasis:
    """Pick watts per logical CPU: configured TDP, else the shipped table, else the default."""
    logical_cpus = logical_cpus or os.cpu_count() or 1
    model = cpu_model_name(cpuinfo_path)
    if tdp_watts is not None:
        if tdp_watts <= 0:
            raise GreenperfError("cpu_tdp_watts", f"must be positive watts, got {tdp_watts}")
        return CpuPowerBasis(
            watts_per_logical_cpu=tdp_watts / logical_cpus,
            basis=f"configured TDP {tdp_watts:g} W / {logical_cpus} logical CPUs",
            details={"tdp_source": "configured", "tdp_watts": tdp_watts,
                     "logical_cpus": logical_cpus, "cpu_model": model},
        )
    if table is None:
        table = load_tdp_table()
    entry = match_cpu_tdp(model, table) if model else None
    if entry is not None:
        return CpuPowerBasis(
            watts_per_logical_cpu=entry.tdp_watts / entry.threads,
            basis=f"{entry.model} TDP {entry.tdp_watts:g} W / {entry.threads} threads",
            details={"tdp_source": f"cpu_tdp.json: {entry.source}", "tdp_watts": entry.tdp_watts,
                     "threads_per_package": entry.threads, "cpu_model": model},
        )
    why = f"CPU model {model!r} is not in cpu_tdp.json" if model else "no CPU model name found"
    return CpuPowerBasis(
        watts_per_logical_cpu=DEFAULT_WATTS_PER_LOGICAL_CPU,
        basis=f"default {DEFAULT_WATTS_PER_LOGICAL_CPU:g} W per logical CPU",
        details={"tdp_source": DEFAULT_WATTS_SOURCE, "cpu_model": model},
        notes=[f"{why}; using the default {DEFAULT_WATTS_PER_LOGICAL_CPU:g} W per logical CPU "
               f"({DEFAULT_WATTS_SOURCE}). Set cpu_tdp_watts for a better estimate."],
    )


@dataclass
class _Start:
    t: float
    value: float


class CpuTdpEstimateMeter(SampledMeter):
    """CPU energy estimated from TDP and this process's CPU time."""

    component = "cpu"
    source = "estimate-tdp"

    def __init__(
        self,
        power: CpuPowerBasis | None = None,
        *,
        cpu_seconds: Callable[[], float] = process_cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        notes: list[str] | None = None,
    ) -> None:
        super().__init__(sample_interval_s, "greenperf-cpu-estimate")
        self.power = power or choose_cpu_power()
        self._cpu_seconds = cpu_seconds
        self._clock = clock
        self._samples = TimeSeries()
        # Why the monitor fell back to this estimate; repeated in every reading.
        self._extra_notes = list(notes or [])

    def _sample(self) -> tuple[float, float]:
        t, used = self._clock(), self._cpu_seconds()
        self._samples.append(t, used)
        return t, used

    def _begin_state(self) -> _Start:
        t, used = self._sample()
        return _Start(t, used)

    def _end_reading(self, start: _Start) -> EnergyReading:
        t1, used1 = self._sample()
        cpu_s = max(0.0, used1 - start.value)
        watts = self.power.watts_per_logical_cpu
        joules = watts * cpu_s
        seconds = t1 - start.t
        points = self._samples.between(start.t, t1)
        trace = rate_trace(points, start.t, watts)
        return EnergyReading(
            component=self.component,
            source=self.source,
            label=ESTIMATED,
            joules=joules,
            seconds=seconds,
            per_device={"cpu": joules},
            formula=(
                f"{watts:.4g} W per busy logical CPU ({self.power.basis}) x {cpu_s:.3f} "
                f"CPU-seconds used by this process = {joules:.4g} J"
            ),
            power_trace=downsample_trace(trace),
            details={
                **self.power.details,
                "scope": "process",
                "watts_per_logical_cpu": watts,
                "process_cpu_seconds": cpu_s,
                "mean_busy_logical_cpus": cpu_s / seconds if seconds > 0 else 0.0,
                "sample_interval_s": self.sample_interval_s,
            },
            notes=self._extra_notes + self.power.notes,
        )

    def _window_start(self, start: _Start) -> float:
        return start.t

    def _drop_samples_before(self, t: float) -> None:
        self._samples.drop_before(t)


class RamEstimateMeter(SampledMeter):
    """RAM energy estimated from this process's resident memory and a per-GiB power figure."""

    component = "ram"
    source = "estimate-ram-per-gb"

    def __init__(
        self,
        watts_per_gib: float = RAM_WATTS_PER_GIB,
        *,
        rss_bytes: Callable[[], int] = process_rss_bytes,
        clock: Callable[[], float] = time.monotonic,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
    ) -> None:
        if watts_per_gib <= 0:
            raise GreenperfError("ram_watts_per_gb", f"must be positive, got {watts_per_gib}")
        super().__init__(sample_interval_s, "greenperf-ram-estimate")
        self.watts_per_gib = watts_per_gib
        self._rss_bytes = rss_bytes
        self._clock = clock
        self._samples = TimeSeries()

    def _sample(self) -> float:
        t = self._clock()
        self._samples.append(t, float(self._rss_bytes()))
        return t

    def _begin_state(self) -> float:
        return self._sample()

    def _end_reading(self, t0: float) -> EnergyReading:
        t1 = self._sample()
        seconds = t1 - t0
        points = self._samples.between(t0, t1)
        gib_seconds = trapezoid_joules([(t, rss / GIB) for t, rss in points])
        mean_gib = gib_seconds / seconds if seconds > 0 else points[-1][1] / GIB
        joules = self.watts_per_gib * gib_seconds
        return EnergyReading(
            component=self.component,
            source=self.source,
            label=ESTIMATED,
            joules=joules,
            seconds=seconds,
            per_device={"ram": joules},
            formula=(
                f"{self.watts_per_gib:g} W/GiB x {mean_gib:.4g} GiB mean resident memory of "
                f"this process x {seconds:.3f} s = {joules:.4g} J"
            ),
            power_trace=downsample_trace(
                [(t - t0, self.watts_per_gib * rss / GIB) for t, rss in points]
            ),
            details={
                "scope": "process",
                "watts_per_gib": self.watts_per_gib,
                "watts_source": RAM_WATTS_SOURCE,
                "mean_rss_bytes": mean_gib * GIB,
                "peak_rss_bytes": max(rss for _, rss in points),
                "sample_interval_s": self.sample_interval_s,
            },
        )

    def _window_start(self, t0: float) -> float:
        return t0

    def _drop_samples_before(self, t: float) -> None:
        self._samples.drop_before(t)
