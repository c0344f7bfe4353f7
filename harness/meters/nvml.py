"""GPU energy through NVML (``pynvml`` from the ``nvidia-ml-py`` package).

Per device, the figure comes from the total-energy counter
(``nvmlDeviceGetTotalEnergyConsumption``, mJ, Volta and newer). Where that call is not
supported, power (``nvmlDeviceGetPowerUsage``, mW) sampled every 100 ms is integrated with
the trapezoid rule. Power is sampled either way, for the power-over-time trace; utilisation
and memory used are sampled about once a second.

A GPU that stops answering during a window (``NVMLError_GpuIsLost`` and kin) is dropped from
then on: its figure covers the time before the loss, and the reading says it is a lower bound.

``pynvml`` is imported lazily, and any module with the same API can be injected
(``nvml_module=``), which is how the tests run without a GPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from greenperf.errors import GreenperfError
from greenperf.meters.base import (
    MEASURED,
    EnergyReading,
    MeterUnavailable,
    SampledMeter,
    TimeSeries,
    downsample_trace,
    trapezoid_joules,
)

DEFAULT_SAMPLE_INTERVAL_S = 0.1
# Utilisation and memory change slowly; reading them every power sample only adds overhead.
AUX_INTERVAL_S = 1.0

# Errors after which a device is treated as gone for the rest of the run.
_LOST_ERRORS = {
    "NVMLError_GpuIsLost",
    "NVMLError_GpuNotFound",
    "NVMLError_ResetRequired",
    "NVMLError_DriverNotLoaded",
    "NVMLError_Uninitialized",
    "NVMLError_LibRmVersionMismatch",
    "NVMLError_Unknown",
}
_NOT_SUPPORTED = {"NVMLError_NotSupported", "NVMLError_FunctionNotFound"}

COUNTER_SOURCE = "nvml-energy-counter"
SAMPLING_SOURCE = "nvml-power-sampling"


def _error_names(err: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(err).__mro__}


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as err:
        raise MeterUnavailable(f"NVML unavailable: pynvml not importable ({err}); "
                               "install nvidia-ml-py") from err
    return pynvml


@dataclass
class _Gpu:
    name: str  # "gpu<NVML index>"
    index: int
    handle: Any
    model: str
    uses_counter: bool
    reads_power: bool
    power_limit_w: float | None
    lost: str | None = None
    lost_at: float | None = None
    sample_errors: int = 0


@dataclass
class _Start:
    t: float
    energy_mj: dict[str, float | None]
    lost_before: set[str] = field(default_factory=set)


class NvmlMeter(SampledMeter):
    """Energy of NVIDIA GPUs, one figure per device plus their sum."""

    component = "gpu"

    def __init__(
        self,
        gpu_indices: list[int] | None = None,
        *,
        nvml_module: ModuleType | Any | None = None,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sample_interval_s, "greenperf-nvml")
        self._nvml = nvml_module if nvml_module is not None else _import_pynvml()
        self._clock = clock
        self._aux_every = max(1, round(AUX_INTERVAL_S / sample_interval_s))
        self._ticks = 0
        self.setup_notes: list[str] = []
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            raise MeterUnavailable(f"NVML unavailable: {_describe(err)}") from err
        self._nvml_open = True
        try:
            self.gpus = self._open_devices(gpu_indices)
        except BaseException:
            self._shutdown_nvml()
            raise
        self._power = TimeSeries()  # (t, {gpu: (watts | None, energy_mJ | None)})
        self._aux = TimeSeries()  # (t, {gpu: (utilisation % | None, memory used B | None)})

    @property
    def source(self) -> str:  # type: ignore[override]
        methods = {g.uses_counter for g in self.gpus}
        if methods == {True}:
            return COUNTER_SOURCE
        if methods == {False}:
            return SAMPLING_SOURCE
        return f"{COUNTER_SOURCE}+{SAMPLING_SOURCE}"

    # -- setup -------------------------------------------------------------------------------

    def _handles(self, gpu_indices: list[int] | None) -> list[tuple[int, Any]]:
        nvml = self._nvml
        count = nvml.nvmlDeviceGetCount()
        if count == 0:
            raise MeterUnavailable("NVML unavailable: the driver reports no GPU")
        if gpu_indices is not None:
            bad = [i for i in gpu_indices if not 0 <= i < count]
            if bad:
                raise GreenperfError("gpu_indices", f"no GPU {bad} (NVML sees {count})")
            return [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in gpu_indices]
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        wanted = [v.strip() for v in visible.split(",") if v.strip()]
        if not wanted or wanted[0].startswith("-"):
            raise MeterUnavailable(f"NVML unavailable: CUDA_VISIBLE_DEVICES={visible!r} hides "
                                   "every GPU")
        handles = []
        for item in wanted:
            if item.isdigit() and int(item) < count:
                handles.append((int(item), nvml.nvmlDeviceGetHandleByIndex(int(item))))
            elif item.startswith("GPU-"):
                handle = nvml.nvmlDeviceGetHandleByUUID(item)
                handles.append((int(nvml.nvmlDeviceGetIndex(handle)), handle))
            else:
                # MIG instances and unknown forms: measure every GPU rather than guess.
                self.setup_notes.append(f"CUDA_VISIBLE_DEVICES entry {item!r} not understood; "
                                        "measuring every GPU NVML sees")
                return [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        return handles

    def _open_devices(self, gpu_indices: list[int] | None) -> list[_Gpu]:
        nvml = self._nvml
        try:
            handles = self._handles(gpu_indices)
        except nvml.NVMLError as err:
            raise MeterUnavailable(f"NVML unavailable: {_describe(err)}") from err
        gpus = []
        for index, handle in handles:
            name = f"gpu{index}"
            model = self._optional(lambda h=handle: nvml.nvmlDeviceGetName(h))
            if isinstance(model, bytes):
                model = model.decode(errors="replace")
            uses_counter, why_not = self._probe(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
            reads_power, power_error = self._probe(nvml.nvmlDeviceGetPowerUsage, handle)
            if not uses_counter and not reads_power:
                self.setup_notes.append(f"{name}: neither energy counter ({why_not}) nor power "
                                        f"reading ({power_error}) works; not measured")
                continue
            if not uses_counter:
                self.setup_notes.append(f"{name}: no energy counter ({why_not}); energy from "
                                        f"power sampled every {self.sample_interval_s:g} s")
            limit_mw = self._optional(lambda h=handle: nvml.nvmlDeviceGetEnforcedPowerLimit(h))
            gpus.append(_Gpu(name=name, index=index, handle=handle, model=str(model or "?"),
                             uses_counter=uses_counter, reads_power=reads_power,
                             power_limit_w=limit_mw / 1000.0 if limit_mw is not None else None))
        if not gpus:
            raise MeterUnavailable("NVML unavailable: no GPU can report energy or power ("
                                   + "; ".join(self.setup_notes) + ")")
        return gpus

    def _probe(self, fn: Callable[[Any], Any], handle: Any) -> tuple[bool, str | None]:
        try:
            fn(handle)
        except self._nvml.NVMLError as err:
            return False, _describe(err)
        return True, None

    def _optional(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except self._nvml.NVMLError:
            return None

    # -- sampling ----------------------------------------------------------------------------

    def _read(self, gpu: _Gpu, fn: Callable[[Any], Any], t: float) -> Any:
        """One NVML call for ``gpu``; None on failure, marking the device lost if it is gone."""
        try:
            return fn(gpu.handle)
        except self._nvml.NVMLError as err:
            names = _error_names(err)
            if names & _LOST_ERRORS:
                gpu.lost, gpu.lost_at = _describe(err), t
            elif not names & _NOT_SUPPORTED:
                gpu.sample_errors += 1
            return None

    def _sample(self) -> float:
        nvml = self._nvml
        t = self._clock()
        power: dict[str, tuple[float | None, float | None]] = {}
        for gpu in self.gpus:
            if gpu.lost:
                continue
            mw = self._read(gpu, nvml.nvmlDeviceGetPowerUsage, t) if gpu.reads_power else None
            mj = None
            if gpu.uses_counter and not gpu.lost:
                mj = self._read(gpu, nvml.nvmlDeviceGetTotalEnergyConsumption, t)
            if not gpu.lost:
                power[gpu.name] = (mw / 1000.0 if mw is not None else None,
                                   float(mj) if mj is not None else None)
        self._power.append(t, power)
        self._ticks += 1
        return t

    def _sample_aux(self, t: float) -> None:
        nvml = self._nvml
        aux: dict[str, tuple[float | None, float | None]] = {}
        for gpu in self.gpus:
            if gpu.lost:
                continue
            rates = self._read(gpu, nvml.nvmlDeviceGetUtilizationRates, t)
            memory = self._read(gpu, nvml.nvmlDeviceGetMemoryInfo, t)
            aux[gpu.name] = (float(rates.gpu) if rates is not None else None,
                             float(memory.used) if memory is not None else None)
        self._aux.append(t, aux)

    def sample_now(self) -> None:
        with self._lock:
            t = self._sample()
            if self._ticks % self._aux_every == 0:
                self._sample_aux(t)

    # -- windows -----------------------------------------------------------------------------

    def _begin_state(self) -> _Start:
        t = self._sample()
        self._sample_aux(t)
        latest = self._power.values[-1]
        return _Start(
            t=t,
            energy_mj={g.name: latest.get(g.name, (None, None))[1] for g in self.gpus},
            lost_before={g.name for g in self.gpus if g.lost},
        )

    def _end_reading(self, start: _Start) -> EnergyReading:
        t1 = self._sample()
        self._sample_aux(t1)
        samples = self._power.between(start.t, t1)
        aux = self._aux.between(start.t, t1)
        per_device: dict[str, float] = {}
        devices: dict[str, dict[str, Any]] = {}
        notes = list(self.setup_notes)
        lower_bound = False
        for gpu in self.gpus:
            watts = [(t, v[gpu.name][0]) for t, v in samples
                     if gpu.name in v and v[gpu.name][0] is not None]
            if gpu.name in start.lost_before:
                per_device[gpu.name] = 0.0
                lower_bound = True
                notes.append(f"{gpu.name} was lost before this window began ({gpu.lost}); "
                             "not measured, so the total is a lower bound")
                continue
            counter = [(t, v[gpu.name][1]) for t, v in samples
                       if gpu.name in v and v[gpu.name][1] is not None]
            begin_mj = start.energy_mj.get(gpu.name)
            if gpu.uses_counter and begin_mj is not None and counter:
                joules = (counter[-1][1] - begin_mj) / 1000.0
                method = COUNTER_SOURCE
            else:
                joules = trapezoid_joules(watts)
                method = SAMPLING_SOURCE
            per_device[gpu.name] = joules
            if gpu.lost:
                lower_bound = True
                lost_after = gpu.lost_at - start.t if gpu.lost_at is not None else 0.0
                notes.append(f"{gpu.name} was lost {lost_after:.1f} s into this window "
                             f"({gpu.lost}); its figure covers only the time before, so the "
                             "total is a lower bound")
            utils = [v[gpu.name][0] for _, v in aux
                     if gpu.name in v and v[gpu.name][0] is not None]
            memory = [v[gpu.name][1] for _, v in aux
                      if gpu.name in v and v[gpu.name][1] is not None]
            devices[gpu.name] = {
                "model": gpu.model,
                "method": method,
                "power_limit_w": gpu.power_limit_w,
                "mean_power_w": sum(w for _, w in watts) / len(watts) if watts else None,
                "mean_utilisation_pct": sum(utils) / len(utils) if utils else None,
                "peak_memory_used_bytes": max(memory) if memory else None,
                "lost": gpu.lost,
                "failed_reads_since_start": gpu.sample_errors,
            }
        trace = [(t - start.t, sum(w for w, _ in v.values() if w is not None))
                 for t, v in samples if any(w is not None for w, _ in v.values())]
        return EnergyReading(
            component=self.component,
            source=self.source,
            label=MEASURED,
            joules=sum(per_device.values()),
            seconds=t1 - start.t,
            per_device=per_device,
            power_trace=downsample_trace(trace),
            details={"scope": "device", "sample_interval_s": self.sample_interval_s,
                     "devices": devices},
            notes=notes,
            lower_bound=lower_bound,
        )

    def _window_start(self, start: _Start) -> float:
        return start.t

    def _drop_samples_before(self, t: float) -> None:
        self._power.drop_before(t)
        self._aux.drop_before(t)

    def close(self) -> None:
        super().close()
        self._shutdown_nvml()

    def _shutdown_nvml(self) -> None:
        # NVML counts init/shutdown pairs; a second shutdown would undo someone else's init.
        if not self._nvml_open:
            return
        self._nvml_open = False
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass
