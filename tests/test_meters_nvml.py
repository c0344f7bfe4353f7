"""NvmlMeter against a fake pynvml module: energy counter, power sampling, no GPU, GPU lost."""

from __future__ import annotations

import json
import time
import types
from dataclasses import dataclass

import pytest
from greenperf.errors import GreenperfError
from greenperf.meters.base import MeterUnavailable
from greenperf.meters.nvml import NvmlMeter

# The real error codes and class names of pynvml, so the meter is tested against the same
# hierarchy it meets on a GPU machine.
_ERRORS = {
    "NVMLError_Uninitialized": 1,
    "NVMLError_NotSupported": 3,
    "NVMLError_NoPermission": 4,
    "NVMLError_DriverNotLoaded": 9,
    "NVMLError_Timeout": 10,
    "NVMLError_LibraryNotFound": 12,
    "NVMLError_FunctionNotFound": 13,
    "NVMLError_GpuIsLost": 15,
    "NVMLError_Unknown": 999,
}


class NVMLError(Exception):
    def __init__(self, value: int = 999) -> None:
        self.value = value
        super().__init__(value)

    def __str__(self) -> str:
        return type(self).__name__.removeprefix("NVMLError_")


def _error_class(name: str, code: int) -> type[NVMLError]:
    def init(self: NVMLError) -> None:
        NVMLError.__init__(self, code)

    return type(name, (NVMLError,), {"__init__": init})


ERRORS = {name: _error_class(name, code) for name, code in _ERRORS.items()}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class FakeGpu:
    """A device whose energy counter (if any) integrates ``true_watts`` as the clock moves."""

    power_w: float = 100.0
    true_watts: float | None = None  # what the counter integrates; defaults to power_w
    energy_mj: float | None = 0.0  # None: the energy counter is not supported
    util: int = 50
    memory_used: int = 1_000_000
    limit_w: float = 300.0
    lost: bool = False
    uuid: str = "GPU-0000"

    def advance(self, seconds: float) -> None:
        if self.energy_mj is not None:
            watts = self.power_w if self.true_watts is None else self.true_watts
            self.energy_mj += watts * seconds * 1000.0


def failing(error_name: str):
    """An NVML call that always raises the named error."""

    def call(*args: object) -> None:
        raise ERRORS[error_name]()

    return call


@pytest.fixture(autouse=True)
def _no_cuda_visible_devices(monkeypatch):
    # The meter honours CUDA_VISIBLE_DEVICES; the machine's own setting must not leak in.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def make_fake_nvml(gpus: list[FakeGpu], init_error: str | None = None) -> types.ModuleType:
    """A stand-in for ``pynvml`` backed by ``gpus``; ``init_error`` makes nvmlInit fail."""
    nvml = types.ModuleType("fake_pynvml")
    nvml.NVMLError = NVMLError
    for name, cls in ERRORS.items():
        setattr(nvml, name, cls)
    nvml.calls = {"init": 0, "shutdown": 0}

    def check(gpu: FakeGpu) -> FakeGpu:
        if gpu.lost:
            raise ERRORS["NVMLError_GpuIsLost"]()
        return gpu

    def init() -> None:
        if init_error:
            raise ERRORS[init_error]()
        nvml.calls["init"] += 1

    def shutdown() -> None:
        nvml.calls["shutdown"] += 1

    def energy(gpu: FakeGpu) -> int:
        if check(gpu).energy_mj is None:
            raise ERRORS["NVMLError_NotSupported"]()
        return int(gpu.energy_mj)

    nvml.nvmlInit = init
    nvml.nvmlShutdown = shutdown
    nvml.nvmlDeviceGetCount = lambda: len(gpus)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]
    nvml.nvmlDeviceGetHandleByUUID = lambda u: next(g for g in gpus if g.uuid == u)
    nvml.nvmlDeviceGetIndex = lambda g: gpus.index(g)
    nvml.nvmlDeviceGetName = lambda g: b"Fake GPU"
    nvml.nvmlDeviceGetTotalEnergyConsumption = energy
    nvml.nvmlDeviceGetPowerUsage = lambda g: int(check(g).power_w * 1000)
    nvml.nvmlDeviceGetEnforcedPowerLimit = lambda g: int(check(g).limit_w * 1000)
    nvml.nvmlDeviceGetUtilizationRates = lambda g: types.SimpleNamespace(gpu=check(g).util,
                                                                          memory=10)
    nvml.nvmlDeviceGetMemoryInfo = lambda g: types.SimpleNamespace(used=check(g).memory_used,
                                                                   total=10**10)
    return nvml


def make_meter(gpus: list[FakeGpu], clock: FakeClock, **kwargs) -> NvmlMeter:
    # A sampling interval of an hour keeps the background thread idle: the test drives samples.
    return NvmlMeter(nvml_module=make_fake_nvml(gpus), clock=clock, sample_interval_s=3600.0,
                     **kwargs)


def step(meter: NvmlMeter, gpus: list[FakeGpu], clock: FakeClock, seconds: float) -> None:
    clock.now += seconds
    for gpu in gpus:
        gpu.advance(seconds)
    meter.sample_now()


def test_energy_counter_gives_per_device_figures_and_their_sum():
    gpus = [FakeGpu(power_w=100.0, true_watts=110.0), FakeGpu(power_w=200.0, util=80)]
    clock = FakeClock()
    meter = make_meter(gpus, clock)
    meter.begin("run")
    for _ in range(3):
        step(meter, gpus, clock, 1.0)
    gpus[1].memory_used = 5_000_000
    step(meter, gpus, clock, 1.0)
    reading = meter.end("run")
    meter.close()

    # gpu0's counter integrates 110 W while it reports 100 W: the counter must win.
    assert reading.per_device == pytest.approx({"gpu0": 440.0, "gpu1": 800.0})
    assert reading.joules == pytest.approx(1240.0)
    assert reading.source == "nvml-energy-counter"
    assert reading.label == "measured"
    assert reading.seconds == pytest.approx(4.0)
    assert not reading.lower_bound
    # Begin, four ticks and end: six samples of 100 + 200 W.
    assert [w for _, w in reading.power_trace] == pytest.approx([300.0] * 6)
    gpu1 = reading.details["devices"]["gpu1"]
    assert gpu1["power_limit_w"] == 300.0
    assert gpu1["mean_utilisation_pct"] == 80.0
    assert gpu1["peak_memory_used_bytes"] == 5_000_000
    assert gpu1["method"] == "nvml-energy-counter"
    json.dumps(reading.to_dict(), allow_nan=False)


def test_power_sampling_fallback_integrates_with_the_trapezoid_rule():
    gpus = [FakeGpu(power_w=100.0, energy_mj=None)]
    clock = FakeClock()
    meter = make_meter(gpus, clock)
    meter.begin("run")
    gpus[0].power_w = 200.0
    step(meter, gpus, clock, 1.0)
    gpus[0].power_w = 300.0
    step(meter, gpus, clock, 1.0)
    reading = meter.end("run")
    meter.close()

    # Samples 100, 200, 300 W one second apart: (100+200)/2 + (200+300)/2 = 400 J.
    assert reading.joules == pytest.approx(400.0)
    assert reading.source == "nvml-power-sampling"
    assert reading.label == "measured"
    assert any("no energy counter" in note for note in reading.notes)


def test_mixed_devices_name_both_methods():
    gpus = [FakeGpu(power_w=100.0), FakeGpu(power_w=50.0, energy_mj=None)]
    clock = FakeClock()
    meter = make_meter(gpus, clock)
    meter.begin("w")
    step(meter, gpus, clock, 2.0)
    reading = meter.end("w")
    assert reading.per_device == pytest.approx({"gpu0": 200.0, "gpu1": 100.0})
    assert reading.source == "nvml-energy-counter+nvml-power-sampling"


def test_no_driver_makes_the_meter_unavailable_with_the_reason():
    with pytest.raises(MeterUnavailable, match="NVMLError_DriverNotLoaded"):
        NvmlMeter(nvml_module=make_fake_nvml([], init_error="NVMLError_DriverNotLoaded"))
    with pytest.raises(MeterUnavailable, match="NVMLError_LibraryNotFound"):
        NvmlMeter(nvml_module=make_fake_nvml([], init_error="NVMLError_LibraryNotFound"))


def test_zero_gpus_is_unavailable_and_releases_nvml():
    nvml = make_fake_nvml([])
    with pytest.raises(MeterUnavailable, match="no GPU"):
        NvmlMeter(nvml_module=nvml)
    assert nvml.calls == {"init": 1, "shutdown": 1}


def test_a_device_with_neither_counter_nor_power_is_unavailable():
    gpu = FakeGpu(energy_mj=None)
    nvml = make_fake_nvml([gpu])
    nvml.nvmlDeviceGetPowerUsage = failing("NVMLError_NotSupported")
    with pytest.raises(MeterUnavailable, match="neither energy counter"):
        NvmlMeter(nvml_module=nvml)


def test_gpu_lost_mid_window_keeps_what_was_measured_and_says_lower_bound():
    gpus = [FakeGpu(power_w=100.0), FakeGpu(power_w=200.0)]
    clock = FakeClock()
    meter = make_meter(gpus, clock)
    meter.begin("run")
    step(meter, gpus, clock, 1.0)
    step(meter, gpus, clock, 1.0)
    gpus[1].lost = True
    step(meter, gpus, clock, 1.0)
    step(meter, gpus, clock, 1.0)
    reading = meter.end("run")

    assert reading.per_device["gpu0"] == pytest.approx(400.0)
    assert reading.per_device["gpu1"] == pytest.approx(400.0)  # the 2 s before the loss
    assert reading.lower_bound
    note = next(n for n in reading.notes if n.startswith("gpu1"))
    assert "lost 3.0 s into this window" in note
    assert "NVMLError_GpuIsLost" in note
    assert "lower bound" in note
    assert reading.details["devices"]["gpu1"]["lost"].startswith("NVMLError_GpuIsLost")

    # The next window knows the device is gone before it starts.
    meter.begin("after")
    step(meter, gpus, clock, 1.0)
    after = meter.end("after")
    meter.close()
    assert after.per_device == pytest.approx({"gpu0": 100.0, "gpu1": 0.0})
    assert after.lower_bound
    assert any("lost before this window began" in n for n in after.notes)


def test_gpu_lost_during_power_sampling_integrates_up_to_the_loss():
    gpus = [FakeGpu(power_w=100.0, energy_mj=None)]
    clock = FakeClock()
    meter = make_meter(gpus, clock)
    meter.begin("run")
    step(meter, gpus, clock, 1.0)
    gpus[0].lost = True
    step(meter, gpus, clock, 1.0)
    reading = meter.end("run")
    meter.close()
    assert reading.joules == pytest.approx(100.0)
    assert reading.lower_bound


def test_a_transient_error_skips_a_sample_without_losing_the_device():
    gpus = [FakeGpu(power_w=100.0)]
    nvml = make_fake_nvml(gpus)
    clock = FakeClock()
    meter = NvmlMeter(nvml_module=nvml, clock=clock, sample_interval_s=3600.0)
    meter.begin("run")
    real_power = nvml.nvmlDeviceGetPowerUsage
    nvml.nvmlDeviceGetPowerUsage = failing("NVMLError_Timeout")
    step(meter, gpus, clock, 1.0)
    nvml.nvmlDeviceGetPowerUsage = real_power
    step(meter, gpus, clock, 1.0)
    reading = meter.end("run")
    assert reading.joules == pytest.approx(200.0)
    assert not reading.lower_bound
    assert reading.details["devices"]["gpu0"]["failed_reads_since_start"] == 1


def test_overlapping_windows_are_measured_independently():
    gpus = [FakeGpu(power_w=100.0)]
    clock = FakeClock()
    meter = make_meter(gpus, clock)
    meter.begin("outer")
    step(meter, gpus, clock, 1.0)
    meter.begin("inner")
    step(meter, gpus, clock, 2.0)
    inner = meter.end("inner")
    step(meter, gpus, clock, 1.0)
    outer = meter.end("outer")
    assert inner.joules == pytest.approx(200.0)
    assert outer.joules == pytest.approx(400.0)
    with pytest.raises(ValueError, match="not open"):
        meter.end("inner")
    meter.begin("again")
    with pytest.raises(ValueError, match="already open"):
        meter.begin("again")
    meter.close()


def test_device_selection(monkeypatch):
    gpus = [FakeGpu(), FakeGpu(uuid="GPU-1111"), FakeGpu()]
    clock = FakeClock()
    assert [g.name for g in make_meter(gpus, clock, gpu_indices=[2]).gpus] == ["gpu2"]
    with pytest.raises(GreenperfError, match="gpu_indices"):
        make_meter(gpus, clock, gpu_indices=[3])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,GPU-1111")
    assert [g.name for g in make_meter(gpus, clock).gpus] == ["gpu0", "gpu1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(MeterUnavailable, match="hides every GPU"):
        make_meter(gpus, clock)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert len(make_meter(gpus, clock).gpus) == 3


def test_close_shuts_nvml_down_once():
    nvml = make_fake_nvml([FakeGpu()])
    meter = NvmlMeter(nvml_module=nvml)
    meter.close()
    meter.close()
    assert nvml.calls == {"init": 1, "shutdown": 1}


def test_background_thread_samples_power_every_interval():
    gpus = [FakeGpu(power_w=150.0, energy_mj=None)]
    meter = NvmlMeter(nvml_module=make_fake_nvml(gpus), sample_interval_s=0.01)
    meter.begin("run")
    # Wait for the samples themselves (begin took one): a fixed sleep assumed the sampler
    # thread got a core often enough, which a loaded machine does not promise.
    deadline = time.monotonic() + 120  # a hang guard, not a speed expectation
    while len(meter._power) < 6:
        assert time.monotonic() < deadline, "the sampler thread took no samples"
        time.sleep(0.005)
    reading = meter.end("run")
    meter.close()
    # Constant power: the trapezoid gives exactly 150 W x the window, whatever the sample times.
    assert reading.joules == pytest.approx(150.0 * reading.seconds)
    assert len(reading.power_trace) >= 5
    assert all(w == pytest.approx(150.0) for _, w in reading.power_trace)


def test_long_windows_keep_at_most_500_trace_points_and_forget_old_samples():
    gpus = [FakeGpu(power_w=100.0)]
    clock = FakeClock()
    meter = make_meter(gpus, clock)
    meter.begin("long")
    for i in range(2000):
        gpus[0].power_w = 100.0 + (i % 2) * 100.0  # alternating 100 / 200 W
        step(meter, gpus, clock, 0.1)
    reading = meter.end("long")
    assert len(reading.power_trace) <= 500
    mean_trace = sum(w for _, w in reading.power_trace) / len(reading.power_trace)
    assert mean_trace == pytest.approx(150.0, rel=0.01)
    assert reading.power_trace[-1][0] <= reading.seconds
    # No window open: the samples are released rather than kept for the rest of the run.
    assert len(meter._power) == 0
    meter.close()
