"""RaplMeter on fake /sys/class/powercap trees: zone selection, wrap-around, unreadable counters."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from greenperf.meters import rapl
from greenperf.meters.base import MeterUnavailable
from greenperf.meters.rapl import RaplMeter, discover_zones

MAX_RANGE = 262_143_328_850  # a typical max_energy_range_uj


def zone(folder: Path, name: str, energy_uj: int = 0, max_range: int | None = MAX_RANGE) -> Path:
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    set_energy(folder, energy_uj)
    if max_range is not None:
        (folder / "max_energy_range_uj").write_text(f"{max_range}\n")
    return folder


def set_energy(folder: Path, energy_uj: int) -> None:
    # Replace the file whole so a concurrent poll never reads it half-written.
    tmp = folder / "energy_uj.tmp"
    tmp.write_text(f"{energy_uj}\n")
    os.replace(tmp, folder / "energy_uj")


def add_joules(folder: Path, joules: float) -> None:
    current = int((folder / "energy_uj").read_text())
    set_energy(folder, current + int(joules * 1e6))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def meter_for(root: Path, clock: FakeClock | None = None) -> RaplMeter:
    # The hour-long poll keeps the thread idle; tests poll with sample_now().
    return RaplMeter(root, poll_interval_s=3600.0, clock=clock or FakeClock())


def server_tree(root: Path) -> dict[str, Path]:
    """Two packages with core/uncore/dram sub-zones, psys, and MMIO copies, as sysfs shows them."""
    z = {
        "pkg0": zone(root / "intel-rapl:0", "package-0"),
        "pkg1": zone(root / "intel-rapl:1", "package-1"),
        "psys": zone(root / "intel-rapl:2", "psys"),
        "mmio0": zone(root / "intel-rapl-mmio:0", "package-0"),
    }
    z["core0"] = zone(z["pkg0"] / "intel-rapl:0:0", "core")
    z["uncore0"] = zone(z["pkg0"] / "intel-rapl:0:1", "uncore")
    z["dram0"] = zone(z["pkg0"] / "intel-rapl:0:2", "dram")
    z["dram1"] = zone(z["pkg1"] / "intel-rapl:1:0", "dram")
    # sysfs also lists every sub-zone at the top level.
    z["core0_top"] = zone(root / "intel-rapl:0:0", "core")
    (root / "intel-rapl").mkdir()  # the control-type folder, not a zone
    return z


def test_single_package(tmp_path):
    pkg = zone(tmp_path / "intel-rapl:0", "package-0", energy_uj=1_000_000)
    clock = FakeClock()
    meter = meter_for(tmp_path, clock)
    meter.begin("run")
    add_joules(pkg, 5.0)
    clock.now = 2.0
    reading = meter.end("run")
    meter.close()
    assert reading.joules == pytest.approx(5.0)
    assert reading.per_device == {"package-0": pytest.approx(5.0)}
    assert (reading.source, reading.label, reading.component) == ("rapl", "measured", "cpu")
    assert reading.details["scope"] == "machine"
    assert reading.seconds == 2.0
    assert reading.power_trace == [(1.0, pytest.approx(2.5))]


def test_counts_packages_only_never_sub_zones_psys_or_mmio_copies(tmp_path):
    z = server_tree(tmp_path)
    meter = meter_for(tmp_path)
    assert [p.name for p in meter.packages] == ["package-0", "package-1"]
    meter.begin("run")
    for key, joules in {"pkg0": 10, "pkg1": 20, "psys": 100, "mmio0": 10, "core0": 7,
                        "uncore0": 2, "dram0": 3, "dram1": 4, "core0_top": 7}.items():
        add_joules(z[key], joules)
    reading = meter.end("run")
    meter.close()
    assert reading.joules == pytest.approx(30.0)
    assert reading.per_device == {"package-0": pytest.approx(10.0),
                                  "package-1": pytest.approx(20.0)}
    # DRAM lies outside the package on Intel: recorded, but not added to the CPU figure.
    assert reading.details["dram_joules"] == {"package-0-dram": pytest.approx(3.0),
                                              "package-1-dram": pytest.approx(4.0)}
    notes = " | ".join(reading.notes)
    assert "skipped psys" in notes
    assert "skipped intel-rapl-mmio:0" in notes


def test_same_package_twice_is_counted_once(tmp_path):
    zone(tmp_path / "intel-rapl:0", "package-0")
    zone(tmp_path / "intel-rapl:1", "package-0")
    zones = discover_zones(tmp_path)
    assert [z.path.name for z in zones.packages] == ["intel-rapl:0"]
    assert any("package-0 already counted" in n for n in zones.notes)


def test_psys_is_used_only_without_packages(tmp_path):
    psys = zone(tmp_path / "intel-rapl:1", "psys")
    meter = meter_for(tmp_path)
    meter.begin("run")
    add_joules(psys, 8.0)
    reading = meter.end("run")
    assert reading.joules == pytest.approx(8.0)
    assert any("psys (whole platform)" in n for n in reading.notes)


def test_mmio_zones_are_used_when_they_are_the_only_packages(tmp_path):
    mmio = zone(tmp_path / "intel-rapl-mmio:0", "package-0")
    meter = meter_for(tmp_path)
    meter.begin("run")
    add_joules(mmio, 4.0)
    assert meter.end("run").joules == pytest.approx(4.0)


def test_wrap_around_is_undone_with_max_energy_range(tmp_path):
    pkg = zone(tmp_path / "intel-rapl:0", "package-0", energy_uj=990_000_000,
               max_range=1_000_000_000)
    meter = meter_for(tmp_path)
    meter.begin("run")
    set_energy(pkg, 999_000_000)
    meter.sample_now()
    set_energy(pkg, 4_000_000)  # wrapped: 1 J to the top, then 4 J
    meter.sample_now()
    set_energy(pkg, 900_000_000)
    meter.sample_now()
    set_energy(pkg, 100_000_000)  # a second wrap in the same window
    reading = meter.end("run")
    assert reading.joules == pytest.approx(9 + 1 + 4 + 896 + 100 + 100)


def wait_until(condition, what: str, limit_s: float = 120.0) -> None:
    """Poll until ``condition()``: a sampler thread on a loaded machine runs when it gets a
    core, not on a schedule. The limit is a hang guard, not a speed expectation."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {limit_s:g} s"
        time.sleep(0.005)


def test_background_poll_catches_wraps_between_begin_and_end(tmp_path):
    pkg = zone(tmp_path / "intel-rapl:0", "package-0", energy_uj=900, max_range=1000)
    meter = RaplMeter(tmp_path, poll_interval_s=0.01)
    meter.begin("run")
    for value in (100, 800, 200):  # two wraps; begin/end alone would see only 300 uJ
        set_energy(pkg, value)
        # Two more polls: the second one began after the first ended, so after this value
        # was written; a fixed sleep assumed the poller had run by then.
        polled = len(meter._totals)
        wait_until(lambda polled=polled: len(meter._totals) >= polled + 2, "background poll")
    reading = meter.end("run")
    meter.close()
    assert reading.joules == pytest.approx((200 + 700 + 400) / 1e6)


def test_unreadable_counter_makes_rapl_unavailable_with_the_path(tmp_path, monkeypatch):
    zone(tmp_path / "intel-rapl:0", "package-0")
    real_read = rapl._read_text

    def denied(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    # Tests often run as root, which chmod cannot lock out; fake the kernel's answer instead.
    monkeypatch.setattr(rapl, "_read_text", denied)
    with pytest.raises(MeterUnavailable) as err:
        RaplMeter(tmp_path)
    assert err.value.reason == (
        f"RAPL unreadable: {tmp_path / 'intel-rapl:0' / 'energy_uj'}: Permission denied")


def test_missing_tree_or_zones_is_unavailable(tmp_path):
    with pytest.raises(MeterUnavailable, match="does not exist"):
        RaplMeter(tmp_path / "nope")
    with pytest.raises(MeterUnavailable, match="no intel-rapl zones"):
        RaplMeter(tmp_path)
    zone(tmp_path / "intel-rapl:0", "mystery")
    with pytest.raises(MeterUnavailable, match="no package or psys zone"):
        RaplMeter(tmp_path)


def test_counter_failing_mid_window_gives_a_lower_bound(tmp_path):
    pkg0 = zone(tmp_path / "intel-rapl:0", "package-0")
    pkg1 = zone(tmp_path / "intel-rapl:1", "package-1")
    meter = meter_for(tmp_path)
    meter.begin("run")
    add_joules(pkg0, 1.0)
    add_joules(pkg1, 2.0)
    meter.sample_now()
    (pkg1 / "energy_uj").unlink()
    add_joules(pkg0, 1.0)
    reading = meter.end("run")
    assert reading.per_device == {"package-0": pytest.approx(2.0),
                                  "package-1": pytest.approx(2.0)}
    assert reading.lower_bound
    assert any(n.startswith("package-1 stopped reading during") for n in reading.notes)


def test_overlapping_windows(tmp_path):
    pkg = zone(tmp_path / "intel-rapl:0", "package-0")
    meter = meter_for(tmp_path)
    meter.begin("outer")
    add_joules(pkg, 1.0)
    meter.begin("inner")
    add_joules(pkg, 2.0)
    inner = meter.end("inner")
    add_joules(pkg, 4.0)
    outer = meter.end("outer")
    assert (inner.joules, outer.joules) == (pytest.approx(2.0), pytest.approx(7.0))
