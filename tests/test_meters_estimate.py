"""CPU (TDP) and RAM (per-GiB) estimates: TDP lookup, formulas, labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from greenperf.errors import GreenperfError
from greenperf.meters.estimate import (
    DEFAULT_WATTS_PER_LOGICAL_CPU,
    GIB,
    CpuTdpEstimateMeter,
    RamEstimateMeter,
    choose_cpu_power,
    cpu_model_name,
    load_tdp_table,
    match_cpu_tdp,
    process_cpu_seconds,
    process_rss_bytes,
)


class Scripted:
    """A callable returning the next of its values, so a test controls time and usage."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0)


def cpuinfo(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: X\nmodel name\t: {model}\nflags\t\t: fpu\n\n"
                    f"processor\t: 1\nmodel name\t: {model}\n")
    return path


def test_shipped_table_has_sourced_server_and_desktop_cpus():
    table = load_tdp_table()
    assert len(table) >= 12
    assert all(e.source and e.tdp_watts > 0 and e.threads >= e.cores > 0 for e in table)
    models = " ".join(e.model for e in table)
    assert "EPYC" in models and "Xeon" in models and "Core" in models and "Ryzen" in models


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763"),
        ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "Intel Xeon Platinum 8380"),
        ("Intel(R) Xeon(R) Platinum 8480+", "Intel Xeon Platinum 8480+"),
        ("12th Gen Intel(R) Core(TM) i9-12900K", "Intel Core i9-12900K"),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", None),  # a different part, 205 W
        ("Intel(R) Core(TM) i9-12900KF", None),
        ("AMD EPYC", None),
    ],
)
def test_model_matching_is_whole_word(model_name, expected):
    entry = match_cpu_tdp(model_name, load_tdp_table())
    assert (entry.model if entry else None) == expected


def test_cpu_model_name_reads_cpuinfo(tmp_path):
    assert cpu_model_name(cpuinfo(tmp_path, "AMD EPYC 7742 64-Core Processor")) == (
        "AMD EPYC 7742 64-Core Processor")
    assert cpu_model_name(tmp_path / "missing") is None


def test_power_basis_configured_then_table_then_default(tmp_path):
    epyc = cpuinfo(tmp_path, "AMD EPYC 7763 64-Core Processor")
    configured = choose_cpu_power(200.0, cpuinfo_path=epyc, logical_cpus=8)
    assert configured.watts_per_logical_cpu == 25.0
    assert configured.details["tdp_source"] == "configured"

    table = choose_cpu_power(cpuinfo_path=epyc, logical_cpus=8)
    assert table.watts_per_logical_cpu == pytest.approx(280 / 128)
    assert "AMD EPYC 7763 TDP 280 W / 128 threads" in table.basis
    assert not table.notes

    (tmp_path / "vm").mkdir()
    unknown = choose_cpu_power(cpuinfo_path=cpuinfo(tmp_path / "vm", "AMD EPYC"), logical_cpus=2)
    assert unknown.watts_per_logical_cpu == DEFAULT_WATTS_PER_LOGICAL_CPU
    assert "'AMD EPYC' is not in cpu_tdp.json" in unknown.notes[0]
    assert "Green Algorithms" in unknown.notes[0]

    with pytest.raises(GreenperfError, match="cpu_tdp_watts"):
        choose_cpu_power(0.0)


def test_bad_table_is_a_one_line_error(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"cpus": [{"model": "X"}]}))
    with pytest.raises(GreenperfError, match=r"t\.json: not a valid CPU TDP table"):
        load_tdp_table(bad)


def test_cpu_estimate_formula_and_trace():
    power = choose_cpu_power(160.0, logical_cpus=16)  # 10 W per logical CPU
    meter = CpuTdpEstimateMeter(
        power,
        clock=Scripted(0.0, 1.0, 3.0),
        cpu_seconds=Scripted(10.0, 11.5, 12.5),
        sample_interval_s=3600.0,
        notes=["RAPL unreadable: x; CPU energy estimated from TDP"],
    )
    meter.begin("run")
    meter.sample_now()
    reading = meter.end("run")
    assert reading.joules == pytest.approx(25.0)  # 10 W x 2.5 CPU-s
    assert reading.label == "estimated"
    assert reading.source == "estimate-tdp"
    assert reading.seconds == 3.0
    assert reading.formula == ("10 W per busy logical CPU (configured TDP 160 W / 16 logical "
                               "CPUs) x 2.500 CPU-seconds used by this process = 25 J")
    # 1.5 CPU-s in the first second, 1 CPU-s over the next two.
    assert reading.power_trace == [(0.5, pytest.approx(15.0)), (2.0, pytest.approx(5.0))]
    assert reading.details["mean_busy_logical_cpus"] == pytest.approx(2.5 / 3.0)
    assert reading.notes == ["RAPL unreadable: x; CPU energy estimated from TDP"]


def test_cpu_estimate_follows_real_process_cpu_time():
    meter = CpuTdpEstimateMeter(choose_cpu_power(40.0, logical_cpus=4), sample_interval_s=3600.0)
    before = process_cpu_seconds()
    meter.begin("busy")
    total = 0
    while process_cpu_seconds() - before < 0.2:
        total += 1
    reading = meter.end("busy")
    assert reading.details["process_cpu_seconds"] >= 0.2
    assert reading.joules == pytest.approx(10.0 * reading.details["process_cpu_seconds"])


def test_ram_estimate_integrates_resident_memory():
    meter = RamEstimateMeter(
        0.375,
        clock=Scripted(0.0, 5.0, 10.0),
        rss_bytes=Scripted(1 * GIB, 3 * GIB, 1 * GIB),
        sample_interval_s=3600.0,
    )
    meter.begin("run")
    meter.sample_now()
    reading = meter.end("run")
    # Mean of the trapezoid: (1+3)/2 x 5 s + (3+1)/2 x 5 s = 20 GiB-s, i.e. 2 GiB over 10 s.
    assert reading.joules == pytest.approx(0.375 * 20.0)
    assert reading.label == "estimated"
    assert reading.source == "estimate-ram-per-gb"
    assert reading.formula == ("0.375 W/GiB x 2 GiB mean resident memory of this process x "
                               "10.000 s = 7.5 J")
    assert reading.details["peak_rss_bytes"] == 3 * GIB
    assert [w for _, w in reading.power_trace] == pytest.approx([0.375, 1.125, 0.375])
    json.dumps(reading.to_dict(), allow_nan=False)


def test_ram_power_must_be_positive():
    with pytest.raises(GreenperfError, match="ram_watts_per_gb"):
        RamEstimateMeter(0.0)


def test_process_rss_is_plausible():
    assert 1024**2 < process_rss_bytes() < 1024**4
