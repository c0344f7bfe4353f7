"""Energy meters: NVML (GPU), RAPL (CPU) and labelled estimates, behind one window API.

    from greenperf.meters import EnergyMonitor
    with EnergyMonitor() as monitor:
        monitor.begin_window("run")
        ...
        measurement = monitor.end_window("run")   # WindowMeasurement, .to_dict() for JSON

Importing this package is cheap: no torch, and pynvml only when a GPU meter is built.
"""

from greenperf.meters.base import (
    ESTIMATED,
    MEASURED,
    PARTLY_ESTIMATED,
    EnergyReading,
    Meter,
    MeterUnavailable,
    UnavailableMeter,
    WindowMeasurement,
)
from greenperf.meters.estimate import (
    CpuPowerBasis,
    CpuTdpEstimateMeter,
    RamEstimateMeter,
    choose_cpu_power,
)
from greenperf.meters.monitor import EnergyMonitor, WindowHandle
from greenperf.meters.nvml import NvmlMeter
from greenperf.meters.rapl import RaplMeter

__all__ = [
    "ESTIMATED",
    "MEASURED",
    "PARTLY_ESTIMATED",
    "CpuPowerBasis",
    "CpuTdpEstimateMeter",
    "EnergyMonitor",
    "EnergyReading",
    "Meter",
    "MeterUnavailable",
    "NvmlMeter",
    "RamEstimateMeter",
    "RaplMeter",
    "UnavailableMeter",
    "WindowHandle",
    "WindowMeasurement",
    "choose_cpu_power",
]
