"""The sustainability account: arithmetic, labels, region and prices, human effort,
pre-training amortisation, missing energy, and the schema that enforces labelled figures."""

from __future__ import annotations

import copy
import json
import math
import statistics
from pathlib import Path

import pytest
from greenperf.account import (
    AMORTISE_KS,
    DECLARED,
    ESTIMATED,
    JOULES_PER_KWH,
    MEASURED,
    build_account,
    default_prices,
    device_use,
    inference_account,
    load_prices_file,
    resolve_settings,
)
from greenperf.carbon import grid_table
from greenperf.errors import CheckFailed, UsageError
from greenperf.meters import EnergyMonitor, EnergyReading, WindowMeasurement
from greenperf.results import read_result, schema_problems, write_result
from greenperf.runner import score_phase

EU_MEMBERS = ("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES "
              "SE").split()


@pytest.fixture(scope="module")
def toy_doc(tmp_path_factory) -> dict:
    """A real 5-run toy result with energy from a real EnergyMonitor (CPU estimate, no RAPL)."""
    import torch
    from greenperf.progress import Progress
    from greenperf.runner import RunRequest, run_workload
    from greenperf.workload import get_workload

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("account")

    def monitor(device: str) -> EnergyMonitor:
        return EnergyMonitor(measure_gpu=False, cpu_tdp_watts=65.0,
                             powercap_root=out / "no-powercap", estimate_sample_interval_s=0.05)

    path = run_workload(RunRequest(workload=get_workload("toy"), scale="tiny", runs=5,
                                   out_dir=out, check_compliance=False, energy_factory=monitor,
                                   progress=Progress(enabled=False)))
    return json.loads(path.read_text())


def window(name: str, seconds: float, *parts: tuple[str, str, str, float]) -> dict:
    """A real WindowMeasurement dict from (component, source, label, joules) parts."""
    readings = [EnergyReading(component=c, source=s, label=lab, joules=j, seconds=seconds)
                for c, s, lab, j in parts]
    return WindowMeasurement(name=name, seconds=seconds, readings=readings).to_dict()


def nvml(joules: float, seconds: float = 10.0) -> dict:
    return window("w", seconds, ("gpu", "nvml-energy-counter", MEASURED, joules))


def phase_with(doc: dict, name: str, energies: list[float], seconds: list[float]) -> dict:
    """A copy of the toy phase with measured GPU windows of ``energies`` and TTAs ``seconds``."""
    phase = copy.deepcopy(doc["phases"][0])
    phase["name"] = name
    runs = phase["runs"][:len(energies)]
    for run, joules, tta in zip(runs, energies, seconds, strict=True):
        run["energy"] = nvml(joules, tta)
        run["tta_seconds"] = tta
        run["status"] = "success"
    phase["runs"] = runs
    phase["score"] = score_phase(runs).to_dict()
    return phase


def settings(**kwargs):
    return resolve_settings(**kwargs)


# --- energy -----------------------------------------------------------------------------------

def test_energy_figures_are_the_run_windows_arithmetic(toy_doc):
    phase_doc = toy_doc["phases"][0]
    runs = phase_doc["runs"]
    account = build_account(toy_doc, settings())
    energy = account["phases"][0]["energy"]
    joules = [r["energy"]["total_joules"] for r in runs]
    total = math.fsum(joules)
    assert energy["total"]["value"] == pytest.approx(total)
    assert energy["kwh"]["value"] == pytest.approx(total / 3.6e6)
    assert energy["to_target_median"]["value"] == pytest.approx(statistics.median(joules))
    dropped = set(phase_doc["score"]["dropped_runs"])
    kept = [r["energy"]["total_joules"] for r in runs if r["index"] not in dropped]
    assert len(kept) == 3 and account["phases"][0]["score_runs"] == sorted(
        r["index"] for r in runs if r["index"] not in dropped)
    assert energy["to_target"]["value"] == pytest.approx(sum(kept) / 3)
    samples = sum(r["samples_seen"] for r in runs)
    assert energy["per_training_sample"]["value"] == pytest.approx(total / samples)
    seconds = sum(r["energy"]["seconds"] for r in runs)
    assert energy["average_power"]["value"] == pytest.approx(total / seconds)
    # The CPU is estimated from TDP here, so every energy figure says "estimated".
    assert {f["label"] for f in energy.values()} == {ESTIMATED}
    assert "estimate-tdp" in energy["total"]["source"]
    components = account["phases"][0]["energy_components"]
    assert sum(f["value"] for f in components.values()) == pytest.approx(total)


def test_energy_is_measured_only_when_every_reading_is(toy_doc):
    doc = copy.deepcopy(toy_doc)
    doc["phases"] = [phase_with(doc, "train", [100.0, 120.0, 110.0], [1.0, 1.2, 1.1])]
    energy = build_account(doc, settings())["phases"][0]["energy"]
    assert energy["total"] == {"value": 330.0, "unit": "J", "label": MEASURED,
                               "source": "sum of 3 run windows (nvml-energy-counter)"}
    run = doc["phases"][0]["runs"][0]
    run["energy"] = window("w", 1.0, ("gpu", "nvml-energy-counter", MEASURED, 100.0),
                           ("cpu", "estimate-tdp", ESTIMATED, 5.0))
    mixed = build_account(doc, settings())["phases"][0]["energy"]["total"]
    assert mixed["label"] == ESTIMATED and mixed["detail"] == "partly estimated"
    assert mixed["value"] == pytest.approx(335.0)


def test_no_energy_means_no_invented_numbers(toy_doc):
    doc = copy.deepcopy(toy_doc)
    for run in doc["phases"][0]["runs"]:
        run["energy"] = None
    account = build_account(doc, settings())
    phase = account["phases"][0]
    for group in ("energy",):
        for fig in phase[group].values():
            assert fig["value"] is None and "not measured" in fig["reason"]
    assert phase["carbon"]["total"]["value"] is None
    assert phase["carbon"]["total"]["label"] == ESTIMATED
    assert phase["money"]["energy_cost"]["value"] is None
    assert phase["money"]["total"]["value"] is None
    # Time is still known, so device-hours and their cost are still there.
    assert phase["money"]["device_cost"]["value"] > 0
    assert account["totals"]["energy"]["total"]["value"] is None
    doc["sustainability"] = account
    assert schema_problems(doc) == []


def test_one_unmeasured_run_is_named(toy_doc):
    doc = copy.deepcopy(toy_doc)
    doc["phases"][0]["runs"][1]["energy"] = None
    total = build_account(doc, settings())["phases"][0]["energy"]["total"]
    assert total["value"] is None and total["reason"] == "energy not measured for run(s) 2"


# --- carbon and regions -----------------------------------------------------------------------

def test_default_region_is_the_world_average_and_labelled_so(toy_doc):
    s = settings()
    assert (s.region.code, s.region_chosen_by) == ("WORLD", "default")
    assert s.region_line() == "WORLD (default)"
    account = build_account(toy_doc, s)
    phase = account["phases"][0]
    kwh = phase["energy"]["kwh"]["value"]
    assert phase["carbon"]["total"]["value"] == pytest.approx(kwh * s.region.gco2e_per_kwh)
    assert phase["carbon"]["total"]["label"] == ESTIMATED
    to_target_kwh = phase["energy"]["to_target"]["value"] / JOULES_PER_KWH
    assert phase["carbon"]["to_target"]["value"] == pytest.approx(
        to_target_kwh * s.region.gco2e_per_kwh)
    assert account["settings"]["region"]["chosen_by"] == "default"
    assert any("region: WORLD (default)" in note for note in account["notes"])


def test_region_selection_changes_carbon_only(toy_doc):
    world = build_account(toy_doc, settings())["phases"][0]
    france = build_account(toy_doc, settings(region="fr"))["phases"][0]
    fr = grid_table().lookup("FR")
    assert france["carbon"]["total"]["value"] == pytest.approx(
        france["energy"]["kwh"]["value"] * fr.gco2e_per_kwh)
    assert france["energy"] == world["energy"] and france["money"] == world["money"]
    assert settings(region="UK").region.code == "GB"
    with pytest.raises(UsageError, match="unknown region"):
        settings(region="ATLANTIS")


def test_region_from_system_description_and_recorded_account(toy_doc):
    doc = copy.deepcopy(toy_doc)
    doc["sustainability"] = None  # the runner records an account; start from none here
    doc["system"]["declared"] = {"region": "NO"}
    s = settings(doc=doc)
    assert (s.region.code, s.region_chosen_by) == ("NO", "system description")
    doc["sustainability"] = build_account(doc, settings(doc=doc, region="PL", amortise=7))
    again = settings(doc=doc)
    assert (again.region.code, again.region_chosen_by, again.amortise) == ("PL", "--region", 7)
    assert settings(doc=doc, region="SE").region.code == "SE"
    # With nothing changed, the recomputed account equals the recorded one.
    assert build_account(doc, again) == doc["sustainability"]


def test_grid_table_covers_the_regions_with_year_and_source():
    table = grid_table()
    assert len(table.regions) >= 30
    for code in ["WORLD", "EU", "US", "CN", "IN", "GB", "NO", "AU", "BR", "CA", "JP", *EU_MEMBERS]:
        region = table.lookup(code)
        assert 0 < region.gco2e_per_kwh < 1500 and 2020 <= region.year <= 2025
        assert "Ember" in region.source
    assert table.default().code == "WORLD"
    assert "CC BY 4.0" in table.attribution
    assert any("annual average" in note for note in table.notes)
    # Low-carbon grids are low and coal-heavy grids are high, as published.
    assert table.lookup("FR").gco2e_per_kwh < table.lookup("DE").gco2e_per_kwh < table.lookup(
        "PL").gco2e_per_kwh


# --- money ------------------------------------------------------------------------------------

def test_money_uses_configured_prices_with_source_and_date(toy_doc):
    s = settings()
    book = default_prices()
    assert book.energy.source and book.energy.date and book.cpu.source and book.cpu.date
    assert all(p.source and p.date for p in book.gpus)
    phase = build_account(toy_doc, s)["phases"][0]
    money, kwh = phase["money"], phase["energy"]["kwh"]["value"]
    assert money["energy_cost"]["value"] == pytest.approx(kwh * book.energy.value)
    assert money["energy_cost"]["unit"] == "USD" and money["energy_cost"]["label"] == ESTIMATED
    cpus = toy_doc["system"]["auto"]["logical_cpus"]
    seconds = sum(r["tta_seconds"] for r in toy_doc["phases"][0]["runs"])
    assert money["device_hours"]["value"] == pytest.approx(seconds * cpus / 3600)
    assert money["device_cost"]["value"] == pytest.approx(seconds / 3600 * cpus * book.cpu.value)
    assert money["total"]["value"] == pytest.approx(
        money["energy_cost"]["value"] + money["device_cost"]["value"])


def test_user_prices_override_and_are_declared(toy_doc, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('currency = "EUR"\n[energy]\nper_kwh = 0.30\nsource = "our contract"\n'
                      'date = 2025-01-01\n[machine]\nper_hour = 2.0\nsource = "server cost"\n'
                      'date = "2025"\n')
    doc = copy.deepcopy(toy_doc)
    doc["phases"] = [phase_with(doc, "train", [3.6e6, 7.2e6, 3.6e6], [3600.0, 7200.0, 1800.0])]
    s = settings(prices_file=prices)
    assert s.prices.origins[-1] == str(prices)
    money = build_account(doc, s)["phases"][0]["money"]
    # 4 kWh measured x 0.30 EUR/kWh, declared price: the cost is declared, not estimated.
    assert money["energy_cost"] == {"value": pytest.approx(4 * 0.30), "unit": "EUR",
                                    "label": DECLARED, "source": money["energy_cost"]["source"]}
    assert "2025-01-01" in money["energy_cost"]["source"]
    assert money["device_cost"]["value"] == pytest.approx(12600 / 3600 * 2.0)
    assert money["total"]["value"] == pytest.approx(1.2 + 7.0)


@pytest.mark.parametrize("text, field", [
    ('[energy]\nper_kwh = 0.2\nsource = "x"\ncurrency = "EUR"\n', "energy.date"),
    ('[energy]\nper_kwh = -1\nsource = "x"\ndate = "2024"\ncurrency = "EUR"\n',
     "energy.per_kwh"),
    ('[energy]\nper_kwh = 0.2\nsource = "x"\ndate = "2024"\n', "energy.currency"),
    ('currency = "EUR"\n[gpu.B200]\nper_gpu_hour = 9\nsource = "x"\ndate = "2025"\nmatch = 3\n',
     "gpu.B200.match"),
    ('currency = "EUR"\n[energy]\nper_kwh = 1\nsource = "x"\ndate = "2025"\ncost = 1\n',
     "energy.cost"),
    ('currency = "EUR"\n[fuel]\n', "fuel"),
])
def test_malformed_prices_name_the_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_prices_file(path)
    assert str(path) in str(err.value) and f"field {field}" in str(err.value)


def test_prices_file_that_is_not_toml_or_missing(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[energy\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_prices_file(path)
    with pytest.raises(UsageError, match="no such prices file"):
        load_prices_file(tmp_path / "absent.toml")


def test_gpu_price_by_model_and_unknown_gpu(toy_doc):
    doc = copy.deepcopy(toy_doc)
    doc["config"]["device"] = "cuda:0"
    doc["system"]["auto"]["gpus"] = {"available": True, "devices": [
        {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_bytes": 1}]}
    devices = device_use(doc)
    assert (devices.kind, devices.count, devices.model) == ("gpu", 1, "NVIDIA H100 80GB HBM3")
    phase = build_account(doc, settings())["phases"][0]
    seconds = sum(r["tta_seconds"] for r in doc["phases"][0]["runs"])
    h100 = default_prices().gpu_for("NVIDIA H100 80GB HBM3")
    assert h100.name == "gpu.H100"
    assert phase["money"]["device_cost"]["value"] == pytest.approx(seconds / 3600 * h100.value)
    doc["system"]["auto"]["gpus"]["devices"][0]["name"] = "Imaginary GPU 9000"
    cost = build_account(doc, settings())["phases"][0]["money"]["device_cost"]
    assert cost["value"] is None and "Imaginary GPU 9000" in cost["reason"]


# --- data, human effort -----------------------------------------------------------------------

def test_data_figures(toy_doc):
    phase_doc = toy_doc["phases"][0]
    data = build_account(toy_doc, settings())["phases"][0]["data"]
    runs, info = phase_doc["runs"], phase_doc["dataset"]
    assert data["samples_seen"]["value"] == sum(r["samples_seen"] for r in runs)
    assert data["unique_samples"]["value"] == min(info["train_samples"],
                                                  max(r["samples_seen"] for r in runs))
    assert data["epochs"]["value"] == pytest.approx(sum(r["epochs"] for r in runs))
    assert data["dataset_bytes"]["value"] == info["nbytes"]
    assert data["eval_samples"]["value"] == sum(r["evals"] for r in runs) * info["eval_samples"]
    assert {f["label"] for f in data.values()} == {MEASURED}


def test_human_effort_declared_and_not_declared(toy_doc):
    effort = build_account(toy_doc, settings())["human_effort"]
    assert effort["declared"] is False
    assert effort["total_hours"]["value"] is None
    assert effort["total_hours"]["reason"].startswith("not declared")
    assert effort["cost"]["label"] == DECLARED
    doc = copy.deepcopy(toy_doc)
    doc["system"]["declared"] = {"human_effort": {
        "porting_hours": 6, "tuning_hours": 10.5, "hourly_rate": 80, "currency": "EUR",
        "source": "team timesheets"}}
    effort = build_account(doc, settings())["human_effort"]
    assert effort["declared"] is True
    assert effort["total_hours"]["value"] == 16.5
    assert effort["cost"] == {"value": 16.5 * 80, "unit": "EUR", "label": DECLARED,
                              "source": "total hours x 80 EUR/h"}
    assert "team timesheets" in effort["porting_hours"]["source"]
    assert {f["label"] for k, f in effort.items() if k != "declared"} == {DECLARED}


# --- amortisation -----------------------------------------------------------------------------

def test_pretraining_amortised_over_k_finetunes(toy_doc):
    doc = copy.deepcopy(toy_doc)
    pre = phase_with(doc, "pretrain", [1000.0, 1200.0, 1100.0, 900.0, 1300.0],
                     [10.0, 12.0, 11.0, 9.0, 13.0])
    fine = phase_with(doc, "finetune", [10.0, 30.0, 20.0, 40.0, 50.0], [1.0, 3.0, 2.0, 4.0, 5.0])
    doc["phases"] = [pre, fine]
    account = build_account(doc, settings(amortise=5))
    amort = account["amortisation"]
    assert amort["pretrain_phase"] == "pretrain" and amort["finetune_phases"] == ["finetune"]
    assert [r["k"] for r in amort["rows"]] == sorted({*AMORTISE_KS, 5})
    pre_j, fine_j = 1100.0, 30.0  # olympic means: drop min and max
    pre_s, fine_s = 11.0, 3.0
    for row in amort["rows"]:
        k = row["k"]
        assert row["energy"]["value"] == pytest.approx(pre_j / k + fine_j)
        assert row["energy"]["label"] == MEASURED
        assert row["time"]["value"] == pytest.approx(pre_s / k + fine_s)
        intensity = grid_table().default().gco2e_per_kwh
        assert row["carbon"]["value"] == pytest.approx(
            (pre_j / k + fine_j) / JOULES_PER_KWH * intensity)
        assert row["carbon"]["label"] == ESTIMATED
        assert row["money"]["value"] > 0
    totals = account["totals"]
    assert totals["energy"]["total"]["value"] == pytest.approx(5500.0 + 150.0)
    doc["sustainability"] = account
    assert schema_problems(doc) == []


def test_amortisation_only_for_a_pretrain_first_phase(toy_doc):
    assert build_account(toy_doc, settings())["amortisation"] is None
    doc = copy.deepcopy(toy_doc)
    doc["phases"] = [phase_with(doc, "train", [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]),
                     phase_with(doc, "pretrain_more", [1.0, 2.0, 3.0], [1.0, 1.0, 1.0])]
    assert build_account(doc, settings())["amortisation"] is None


def test_amortise_must_be_positive():
    with pytest.raises(UsageError, match="--amortise"):
        settings(amortise=0)


# --- inference --------------------------------------------------------------------------------

def test_inference_account_arithmetic(toy_doc):
    s = settings(region="DE")
    devices = device_use(toy_doc)
    entry = inference_account(7200.0, 60.0, 1200, s, devices, energy_label=MEASURED,
                              energy_source="nvml-energy-counter")
    assert entry["energy"]["kwh"]["value"] == pytest.approx(0.002)
    assert entry["energy"]["per_sample"]["value"] == pytest.approx(6.0)
    assert entry["energy"]["average_power"]["value"] == pytest.approx(120.0)
    assert entry["carbon"]["total"]["value"] == pytest.approx(0.002 * s.region.gco2e_per_kwh)
    unmeasured = inference_account(None, 60.0, 1200, s, devices)
    assert unmeasured["energy"]["total"]["value"] is None
    assert unmeasured["money"]["device_cost"]["value"] > 0


def test_inference_document_is_read_defensively(toy_doc):
    doc = copy.deepcopy(toy_doc)
    doc["kind"] = "inference"
    doc["phases"] = []
    doc["inference"] = {"results": [
        {"scenario": "Offline", "mode": "PerformanceOnly", "duration_s": 10.0, "samples": 500,
         "energy": nvml(2000.0, 10.0)},
        {"scenario": "SingleStream", "mode": "PerformanceOnly", "duration_s": 5.0,
         "samples_per_second": 20.0},
    ]}
    account = build_account(doc, settings())
    offline, single = account["inference"]
    assert offline["name"] == "Offline/PerformanceOnly"
    assert offline["energy"]["per_sample"]["value"] == pytest.approx(4.0)
    assert offline["energy"]["total"]["label"] == MEASURED
    assert single["data"]["samples"]["value"] == 100
    assert single["energy"]["total"]["value"] is None
    doc["sustainability"] = account
    assert [p for p in schema_problems(doc) if "sustainability" in p] == []


# --- schema -----------------------------------------------------------------------------------

def test_schema_accepts_the_account_and_rejects_unlabelled_figures(toy_doc, tmp_path):
    doc = copy.deepcopy(toy_doc)
    doc["sustainability"] = build_account(doc, settings())
    path = tmp_path / "result.json"
    write_result(path, doc)
    assert read_result(path)["sustainability"]["phases"][0]["energy"]["total"]["label"]

    unlabelled = copy.deepcopy(doc)
    del unlabelled["sustainability"]["phases"][0]["carbon"]["total"]["label"]
    write_result(path, unlabelled)
    with pytest.raises(CheckFailed, match="sustainability"):
        read_result(path)

    wrong_label = copy.deepcopy(doc)
    wrong_label["sustainability"]["totals"]["energy"]["total"]["label"] = "guessed"
    no_reason = copy.deepcopy(doc)
    no_reason["sustainability"]["human_effort"]["cost"].pop("reason")
    bare_number = copy.deepcopy(doc)
    bare_number["sustainability"]["phases"][0]["money"]["total"] = 0.01
    for bad in (wrong_label, no_reason, bare_number):
        assert any("sustainability" in p for p in schema_problems(bad))


def test_account_is_pure(toy_doc):
    before = json.dumps(toy_doc, sort_keys=True)
    build_account(toy_doc, settings(region="JP"))
    assert json.dumps(toy_doc, sort_keys=True) == before


def test_shipped_data_is_in_package_data():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"data/*"' in text
