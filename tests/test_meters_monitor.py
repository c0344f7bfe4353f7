"""EnergyMonitor: meter choice, visible fallbacks, named windows, JSON output, cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from greenperf.meters import EnergyMonitor

# The fakes live beside their meters' tests; tests/ is imported as a folder or as a package.
try:
    from test_meters_nvml import FakeGpu, make_fake_nvml
    from test_meters_rapl import add_joules, wait_until, zone
except ImportError:
    from tests.test_meters_nvml import FakeGpu, make_fake_nvml
    from tests.test_meters_rapl import add_joules, wait_until, zone


@pytest.fixture(autouse=True)
def _no_cuda_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def quiet_monitor(**kwargs) -> EnergyMonitor:
    # Hour-long intervals keep sampler threads idle so the tests decide what is sampled.
    return EnergyMonitor(gpu_sample_interval_s=3600.0, rapl_poll_interval_s=3600.0,
                         estimate_sample_interval_s=3600.0, **kwargs)


def test_missing_sensors_fall_back_to_estimates_with_visible_notes(tmp_path):
    monitor = quiet_monitor(nvml_module=make_fake_nvml([], init_error="NVMLError_DriverNotLoaded"),
                            powercap_root=tmp_path / "no-powercap")
    assert [(m.component, m.source) for m in monitor.meters] == [
        ("cpu", "estimate-tdp"), ("ram", "estimate-ram-per-gb")]
    assert [(u.component, u.source) for u in monitor.unavailable] == [
        ("gpu", "nvml"), ("cpu", "rapl")]
    assert "NVMLError_DriverNotLoaded" in monitor.unavailable[0].reason

    measurement = _measure(monitor, "run")
    monitor.close()
    assert measurement.label == "estimated"
    rapl_reason = f"RAPL unavailable: {tmp_path / 'no-powercap'} does not exist"
    assert f"{rapl_reason}; CPU energy estimated from TDP" in measurement.notes
    assert any("no GPU energy measured" in n for n in measurement.notes)
    cpu = next(r for r in measurement.readings if r.component == "cpu")
    assert f"{rapl_reason}; CPU energy estimated from TDP" in cpu.notes
    assert cpu.formula and cpu.label == "estimated"

    described = monitor.describe()
    assert described["unavailable"][1] == {"component": "cpu", "source": "rapl",
                                           "reason": rapl_reason}
    json.dumps(described)


def test_real_sensors_are_preferred_and_the_mix_is_partly_estimated(tmp_path):
    pkg = zone(tmp_path / "intel-rapl:0", "package-0")
    gpus = [FakeGpu(power_w=100.0)]
    monitor = quiet_monitor(nvml_module=make_fake_nvml(gpus), powercap_root=tmp_path)
    assert [(m.component, m.source) for m in monitor.meters] == [
        ("gpu", "nvml-energy-counter"), ("cpu", "rapl"), ("ram", "estimate-ram-per-gb")]
    assert monitor.unavailable == []

    monitor.begin_window("run")
    gpus[0].advance(2.0)
    add_joules(pkg, 30.0)
    measurement = monitor.end_window("run")
    monitor.close()

    by_component = measurement.joules_by_component()
    assert by_component["gpu"] == pytest.approx(200.0)
    assert by_component["cpu"] == pytest.approx(30.0)
    assert by_component["ram"] > 0
    assert measurement.total_joules == pytest.approx(sum(by_component.values()))
    assert measurement.label == "partly estimated"
    data = json.loads(json.dumps(measurement.to_dict(), allow_nan=False))
    assert data["label"] == "partly estimated"
    assert [r["label"] for r in data["readings"]] == ["measured", "measured", "estimated"]


def test_configured_tdp_is_used_by_the_estimate(tmp_path):
    monitor = quiet_monitor(measure_gpu=False, cpu_tdp_watts=64.0,
                            powercap_root=tmp_path / "none")
    measurement = _measure(monitor, "run")
    monitor.close()
    cpu = next(r for r in measurement.readings if r.component == "cpu")
    assert "configured TDP 64 W" in cpu.formula
    assert "GPU energy not measured: turned off (measure_gpu=False)" in measurement.notes


def test_windows_nest_and_overlap_by_name(tmp_path):
    pkg = zone(tmp_path / "intel-rapl:0", "package-0")
    monitor = quiet_monitor(measure_gpu=False, powercap_root=tmp_path)
    monitor.begin_window("a")
    add_joules(pkg, 1.0)
    monitor.begin_window("b")
    add_joules(pkg, 2.0)
    with pytest.raises(ValueError, match="already open"):
        monitor.begin_window("b")
    a = monitor.end_window("a")  # closes before b: overlapping, not nested
    add_joules(pkg, 4.0)
    b = monitor.end_window("b")
    with pytest.raises(ValueError, match="not open"):
        monitor.end_window("b")
    with monitor.window("c") as c:
        add_joules(pkg, 8.0)
        assert monitor.open_windows == ["c"]
    monitor.close()
    assert a.joules_by_component()["cpu"] == pytest.approx(3.0)
    assert b.joules_by_component()["cpu"] == pytest.approx(6.0)
    assert c.measurement.joules_by_component()["cpu"] == pytest.approx(8.0)
    assert c.measurement.name == "c"


def test_gpu_lost_mid_run_does_not_crash_the_monitor(tmp_path):
    gpus = [FakeGpu(power_w=100.0)]
    monitor = quiet_monitor(nvml_module=make_fake_nvml(gpus), powercap_root=tmp_path / "none")
    monitor.begin_window("run")
    gpus[0].advance(1.0)
    monitor.meters[0].sample_now()
    gpus[0].lost = True
    measurement = monitor.end_window("run")
    monitor.close()
    assert measurement.joules_by_component()["gpu"] == pytest.approx(100.0)
    assert measurement.lower_bound
    assert measurement.to_dict()["lower_bound"] is True


def test_samplers_run_only_while_a_window_is_open(tmp_path):
    monitor = EnergyMonitor(measure_gpu=False, powercap_root=tmp_path / "none",
                            estimate_sample_interval_s=0.01)
    monitor.begin_window("run")
    ram_meter = next(m for m in monitor.meters if m.component == "ram")
    # Samples taken, not time slept: begin took one, the thread the rest.
    wait_until(lambda: len(ram_meter._samples) >= 6, "RAM samples from the sampler thread")
    measurement = monitor.end_window("run")
    ram = next(r for r in measurement.readings if r.component == "ram")
    assert len(ram.power_trace) >= 5
    names = {t.name for t in threading.enumerate()}
    assert not names & {"greenperf-cpu-estimate", "greenperf-ram-estimate"}
    monitor.close()


def test_importing_the_package_loads_neither_torch_nor_pynvml():
    code = ("import sys, greenperf.meters; "
            "print(sorted(m for m in ('torch', 'pynvml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def _measure(monitor: EnergyMonitor, name: str):
    monitor.begin_window(name)
    sum(i * i for i in range(20_000))
    return monitor.end_window(name)
