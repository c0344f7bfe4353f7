"""CPU energy from RAPL counters under /sys/class/powercap (Intel, and AMD Zen via the same tree).

Which zones are counted, so that no joule is counted twice:

- Only top-level ``package-N`` zones (``intel-rapl:N``). Their sub-zones (``core``, ``uncore``)
  are parts of the package and are never added.
- ``dram`` sub-zones measure the memory DIMMs, which on Intel are *outside* the package
  domain, so adding them would not double count; they are still kept out of the CPU figure
  because greenperf's RAM component is always the per-GiB estimate (comparable across
  machines), and counting DRAM there and here would. The DRAM joules are recorded in
  ``details["dram_joules"]`` so nothing measured is thrown away.
- ``psys`` (whole platform, which includes the packages) is used only when no package zone
  exists.
- ``intel-rapl-mmio:N`` zones duplicate the MSR packages of the same name and are used only
  when no MSR package zone exists.
- Two zones with the same name (the same package seen twice) are counted once.

Counters are in microjoules and wrap at ``max_energy_range_uj``. A background poll (1 s by
default) reads every zone so that at most one wrap can happen between two reads even on long
windows; at 300 W a typical 262 kJ range wraps every ~15 minutes.

RAPL counts the whole machine, every process (``details["scope"] == "machine"``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from greenperf.meters.base import (
    MEASURED,
    EnergyReading,
    MeterUnavailable,
    SampledMeter,
    TimeSeries,
    downsample_trace,
    rate_trace,
)

POWERCAP_ROOT = Path("/sys/class/powercap")
DEFAULT_POLL_INTERVAL_S = 1.0
_TOP_ZONE = re.compile(r"^intel-rapl(?P<mmio>-mmio)?:(?P<index>\d+)$")


@dataclass
class RaplZone:
    """One counter: its sysfs folder, name and wrap range; ``total_uj`` never wraps."""

    name: str
    path: Path
    max_range_uj: int | None
    last_uj: int = 0
    total_uj: int = 0
    failed: str | None = None  # why reading stopped, if it did

    @property
    def counter_file(self) -> Path:
        return self.path / "energy_uj"


@dataclass
class RaplZones:
    packages: list[RaplZone]
    dram: list[RaplZone] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_text(path: Path) -> str:
    with open(path) as f:
        return f.read().strip()


def _unreadable(err: OSError, path: Path) -> MeterUnavailable:
    return MeterUnavailable(f"RAPL unreadable: {err.filename or path}: {err.strerror or err}")


def _open_zone(path: Path) -> RaplZone:
    """Read a zone's name, wrap range and current counter; raise MeterUnavailable if unreadable."""
    try:
        name = _read_text(path / "name")
        counter = int(_read_text(path / "energy_uj"))
    except OSError as err:
        raise _unreadable(err, path) from err
    except ValueError as err:
        raise MeterUnavailable(f"RAPL unreadable: {path / 'energy_uj'}: {err}") from err
    try:
        max_range: int | None = int(_read_text(path / "max_energy_range_uj"))
    except (OSError, ValueError):
        max_range = None
    return RaplZone(name=name, path=path, max_range_uj=max_range, last_uj=counter)


def discover_zones(root: Path = POWERCAP_ROOT) -> RaplZones:
    """Find the zones to count under ``root`` (see the module docstring for the rules)."""
    if not root.is_dir():
        raise MeterUnavailable(f"RAPL unavailable: {root} does not exist")
    try:
        entries = sorted(os.listdir(root))
    except OSError as err:
        raise _unreadable(err, root) from err
    msr: list[RaplZone] = []
    mmio: list[RaplZone] = []
    for entry in entries:
        match = _TOP_ZONE.match(entry)
        if match:
            (mmio if match["mmio"] else msr).append(_open_zone(root / entry))
    if not msr and not mmio:
        raise MeterUnavailable(f"RAPL unavailable: no intel-rapl zones under {root}")

    notes: list[str] = []
    top = msr
    if any(z.name.startswith("package") for z in msr):
        if mmio:
            notes.append(
                "skipped " + ", ".join(z.path.name for z in mmio)
                + " (MMIO copies of the MSR package zones)"
            )
    elif mmio:
        top = msr + mmio

    packages: list[RaplZone] = []
    seen_names: set[str] = set()
    seen_paths: set[Path] = set()
    for zone in top:
        if not zone.name.startswith("package"):
            continue
        real = zone.path.resolve()
        if zone.name in seen_names or real in seen_paths:
            notes.append(f"skipped {zone.path.name} ({zone.name} already counted)")
            continue
        seen_names.add(zone.name)
        seen_paths.add(real)
        packages.append(zone)

    psys = [z for z in top if z.name == "psys"]
    if packages and psys:
        notes.append("skipped psys (the whole platform, which includes the packages)")
    elif not packages:
        if not psys:
            names = ", ".join(sorted({z.name for z in top}))
            raise MeterUnavailable(f"RAPL unavailable: no package or psys zone under {root} "
                                   f"(found: {names})")
        packages = psys[:1]
        notes.append("no RAPL package zone; CPU energy is the psys (whole platform) counter")

    dram: list[RaplZone] = []
    for package in packages:
        for sub in sorted(package.path.glob(f"{package.path.name}:*")):
            try:
                if _read_text(sub / "name") == "dram":
                    zone = _open_zone(sub)
                    zone.name = f"{package.name}-dram"
                    dram.append(zone)
            except (OSError, MeterUnavailable):
                notes.append(f"skipped unreadable sub-zone {sub.name}")
    for zone in packages + dram:
        if zone.max_range_uj is None:
            notes.append(f"{zone.path.name}: max_energy_range_uj unreadable; a wrap of this "
                         "counter would be missed")
    return RaplZones(packages=packages, dram=dram, notes=notes)


def advance(zone: RaplZone, counter_uj: int) -> None:
    """Add the energy since the last read to ``zone.total_uj``, undoing at most one wrap."""
    if counter_uj >= zone.last_uj:
        zone.total_uj += counter_uj - zone.last_uj
    elif zone.max_range_uj:
        zone.total_uj += zone.max_range_uj - zone.last_uj + counter_uj
    else:
        # Unknown range: count from zero, an underestimate noted at discovery.
        zone.total_uj += counter_uj
    zone.last_uj = counter_uj


@dataclass
class _Start:
    t: float
    totals_uj: dict[str, int]
    failed_before: set[str]


class RaplMeter(SampledMeter):
    """Machine-wide CPU package energy from RAPL counters."""

    component = "cpu"
    source = "rapl"

    def __init__(
        self,
        powercap_root: Path = POWERCAP_ROOT,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(poll_interval_s, "greenperf-rapl")
        zones = discover_zones(Path(powercap_root))
        self.root = Path(powercap_root)
        self.packages = zones.packages
        self.dram = zones.dram
        self.discovery_notes = zones.notes
        self._clock = clock
        # (time, summed package microjoules) for the power-over-time trace.
        self._totals = TimeSeries()

    def _sample(self) -> float:
        t = self._clock()
        for zone in self.packages + self.dram:
            if zone.failed:
                continue
            try:
                advance(zone, int(_read_text(zone.counter_file)))
            except (OSError, ValueError) as err:
                zone.failed = f"{zone.counter_file}: {getattr(err, 'strerror', None) or err}"
        self._totals.append(t, sum(z.total_uj for z in self.packages))
        return t

    def _begin_state(self) -> _Start:
        t = self._sample()
        return _Start(
            t=t,
            totals_uj={z.name: z.total_uj for z in self.packages + self.dram},
            failed_before={z.name for z in self.packages + self.dram if z.failed},
        )

    def _end_reading(self, start: _Start) -> EnergyReading:
        t1 = self._sample()
        per_device = {z.name: (z.total_uj - start.totals_uj[z.name]) / 1e6 for z in self.packages}
        dram = {z.name: (z.total_uj - start.totals_uj[z.name]) / 1e6 for z in self.dram}
        notes = list(self.discovery_notes)
        lower_bound = False
        for zone in self.packages + self.dram:
            if zone.failed:
                lower_bound = lower_bound or zone in self.packages
                when = "before" if zone.name in start.failed_before else "during"
                notes.append(f"{zone.name} stopped reading {when} this window ({zone.failed}); "
                             "its figure covers only the time before, a lower bound")
        points = self._totals.between(start.t, t1)
        trace = rate_trace(points, start.t, 1e-6)  # microjoules per second to watts
        details: dict = {"scope": "machine", "powercap_root": str(self.root),
                         "zones": {z.name: z.path.name for z in self.packages},
                         "poll_interval_s": self.sample_interval_s}
        if dram:
            details["dram_joules"] = dram
            details["dram_note"] = ("RAPL DRAM energy, recorded but not added: the RAM "
                                    "component is the per-GiB estimate")
        return EnergyReading(
            component=self.component,
            source=self.source,
            label=MEASURED,
            joules=sum(per_device.values()),
            seconds=t1 - start.t,
            per_device=per_device,
            power_trace=downsample_trace(trace),
            details=details,
            notes=notes,
            lower_bound=lower_bound,
        )

    def _window_start(self, start: _Start) -> float:
        return start.t

    def _drop_samples_before(self, t: float) -> None:
        self._totals.drop_before(t)
