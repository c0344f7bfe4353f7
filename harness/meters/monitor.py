"""EnergyMonitor: picks the best meter per component and measures named windows.

- GPU: NVML when it works.
- CPU: RAPL when readable, else the TDP estimate.
- RAM: always the per-GiB estimate.

A sensor that cannot be used is listed in ``unavailable`` with its reason, and every window's
notes say what was estimated instead, so no fallback is silent.

Windows are keyed by name and may nest or overlap (``begin_window("run")`` then
``begin_window("eval")``), after Zeus's ``ZeusMonitor``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from greenperf.meters.base import Meter, MeterUnavailable, UnavailableMeter, WindowMeasurement
from greenperf.meters.estimate import (
    CPUINFO_PATH,
    DEFAULT_SAMPLE_INTERVAL_S,
    RAM_WATTS_PER_GIB,
    CpuTdpEstimateMeter,
    RamEstimateMeter,
    choose_cpu_power,
)
from greenperf.meters.nvml import DEFAULT_SAMPLE_INTERVAL_S as GPU_SAMPLE_INTERVAL_S
from greenperf.meters.nvml import NvmlMeter
from greenperf.meters.rapl import DEFAULT_POLL_INTERVAL_S, POWERCAP_ROOT, RaplMeter


@dataclass
class WindowHandle:
    """Filled in when a ``with monitor.window(name)`` block ends."""

    name: str
    measurement: WindowMeasurement | None = None


class EnergyMonitor:
    """Measures GPU, CPU and RAM energy over named windows with the best meters available."""

    def __init__(
        self,
        gpu_indices: list[int] | None = None,
        cpu_tdp_watts: float | None = None,
        *,
        measure_gpu: bool = True,
        nvml_module: ModuleType | Any | None = None,
        powercap_root: Path = POWERCAP_ROOT,
        cpuinfo_path: Path = CPUINFO_PATH,
        ram_watts_per_gib: float = RAM_WATTS_PER_GIB,
        gpu_sample_interval_s: float = GPU_SAMPLE_INTERVAL_S,
        rapl_poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        estimate_sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, float] = {}
        self.meters: list[Meter] = []
        self.unavailable: list[UnavailableMeter] = []
        self.notes: list[str] = []

        if measure_gpu:
            try:
                gpu = NvmlMeter(gpu_indices, nvml_module=nvml_module,
                                sample_interval_s=gpu_sample_interval_s)
                self.meters.append(gpu)
                self.notes.extend(gpu.setup_notes)
            except MeterUnavailable as err:
                self._unavailable("gpu", "nvml", err.reason, "no GPU energy measured")
        else:
            self.notes.append("GPU energy not measured: turned off (measure_gpu=False)")

        try:
            self.meters.append(RaplMeter(powercap_root, poll_interval_s=rapl_poll_interval_s))
        except MeterUnavailable as err:
            fallback = f"{err.reason}; CPU energy estimated from TDP"
            self._unavailable("cpu", "rapl", err.reason, "CPU energy estimated from TDP")
            power = choose_cpu_power(cpu_tdp_watts, cpuinfo_path=cpuinfo_path)
            self.meters.append(CpuTdpEstimateMeter(
                power, sample_interval_s=estimate_sample_interval_s, notes=[fallback]))

        self.meters.append(RamEstimateMeter(ram_watts_per_gib,
                                            sample_interval_s=estimate_sample_interval_s))

    def _unavailable(self, component: str, source: str, reason: str, consequence: str) -> None:
        self.unavailable.append(UnavailableMeter(component, source, reason))
        self.notes.append(f"{reason}; {consequence}")

    def begin_window(self, name: str) -> None:
        """Open the window ``name`` on every meter; raises ValueError if it is already open."""
        with self._lock:
            if name in self._open:
                raise ValueError(f"energy window {name!r} is already open")
            self._open[name] = self._clock()
            for meter in self.meters:
                meter.begin(name)

    def end_window(self, name: str) -> WindowMeasurement:
        """Close the window ``name`` and return every meter's reading for it."""
        with self._lock:
            if name not in self._open:
                raise ValueError(f"energy window {name!r} is not open")
            t0 = self._open.pop(name)
            readings = [meter.end(name) for meter in self.meters]
            seconds = self._clock() - t0
        return WindowMeasurement(name=name, seconds=seconds, readings=readings,
                                 notes=list(self.notes))

    @contextmanager
    def window(self, name: str) -> Iterator[WindowHandle]:
        """``with monitor.window("run") as w: ...`` then read ``w.measurement``."""
        handle = WindowHandle(name)
        self.begin_window(name)
        try:
            yield handle
        finally:
            handle.measurement = self.end_window(name)

    @property
    def open_windows(self) -> list[str]:
        return list(self._open)

    def describe(self) -> dict[str, Any]:
        """What is measured and how, for the result file."""
        return {
            "meters": [{"component": m.component, "source": m.source} for m in self.meters],
            "unavailable": [u.to_dict() for u in self.unavailable],
            "notes": list(self.notes),
        }

    def close(self) -> None:
        """Stop every sampler thread and release NVML. Open windows are abandoned."""
        for meter in self.meters:
            meter.close()
        self._open.clear()

    def __enter__(self) -> EnergyMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
