"""``greenperf report``: the account as a table and as JSON, settings from the command line,
and one-line errors for bad input."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
from conftest import assert_one_line_error, greenperf
from greenperf.account import build_account, resolve_settings
from greenperf.carbon import grid_table
from greenperf.cli import main
from greenperf.meters import EnergyMonitor
from greenperf.results import write_result
from greenperf.runner import score_phase


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Path:
    """A real 5-run toy result file with estimated CPU energy, as the runner writes it."""
    import torch
    from greenperf.progress import Progress
    from greenperf.runner import RunRequest, run_workload
    from greenperf.workload import get_workload

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("report")

    def monitor(device: str) -> EnergyMonitor:
        return EnergyMonitor(measure_gpu=False, cpu_tdp_watts=65.0,
                             powercap_root=out / "no-powercap", estimate_sample_interval_s=0.05)

    return run_workload(RunRequest(workload=get_workload("toy"), scale="tiny", runs=5,
                                   out_dir=out, check_compliance=False, energy_factory=monitor,
                                   progress=Progress(enabled=False)))


def cli(capsys, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``greenperf`` in this process (fast) and return what a subprocess would."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["greenperf", *args], code, captured.out, captured.err)


def report_json(capsys, *args: str) -> dict:
    proc = cli(capsys, "report", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_table_shows_every_figure_with_its_label(result):
    proc = greenperf("report", str(result))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "region: WORLD (default)" in out
    assert "prices: greenperf default prices" in out and "2024-10-17" in out
    for row in ("energy total", "energy kwh", "energy to target median", "energy to target",
                "energy per training sample", "energy average power", "carbon total",
                "money energy cost", "money device cost", "money total", "data samples seen",
                "data unique samples", "data epochs", "data dataset bytes", "data eval samples"):
        line = next(x for x in out.splitlines() if x.startswith(row + " "))
        assert any(label in line for label in ("measured", "estimated", "declared")), line
    assert "human effort: not declared" in out
    assert "pre-training amortisation: not applicable" in out
    carbon = next(x for x in out.splitlines() if x.startswith("carbon total"))
    assert "estimated" in carbon


def test_json_is_the_account_recomputed_with_the_settings(result, capsys):
    doc = json.loads(result.read_text())
    data = report_json(capsys, str(result))
    account = data["account"]
    assert account == build_account(doc, resolve_settings(doc=doc))
    assert account["settings"]["region"]["code"] == "WORLD"
    joules = sum(r["energy"]["total_joules"] for r in doc["phases"][0]["runs"])
    assert account["phases"][0]["energy"]["total"]["value"] == pytest.approx(joules)

    france = report_json(capsys, str(result), "--region", "FR")["account"]
    assert france["settings"]["region"]["code"] == "FR"
    assert france["settings"]["region"]["chosen_by"] == "--region"
    kwh = france["phases"][0]["energy"]["kwh"]["value"]
    assert france["phases"][0]["carbon"]["total"]["value"] == pytest.approx(
        kwh * grid_table().lookup("FR").gco2e_per_kwh)
    table = cli(capsys, "report", str(result), "--region", "FR").stdout
    assert "region: FR (--region)" in table


def test_prices_file_is_used_and_named(result, capsys, tmp_path):
    prices = tmp_path / "mine.toml"
    prices.write_text('currency = "EUR"\n[energy]\nper_kwh = 0.5\nsource = "tariff sheet"\n'
                      'date = "2025-02"\n')
    account = report_json(capsys, str(result), "--prices", str(prices))["account"]
    assert account["settings"]["prices"]["origins"][-1] == str(prices)
    assert account["settings"]["prices"]["energy"]["source"] == "tariff sheet"
    phase = account["phases"][0]
    assert phase["money"]["energy_cost"]["value"] == pytest.approx(
        phase["energy"]["kwh"]["value"] * 0.5)
    assert phase["money"]["energy_cost"]["unit"] == "EUR"
    # The CPU price is still the default one, in USD: no total across currencies.
    assert phase["money"]["total"]["value"] is None
    assert "different currencies" in phase["money"]["total"]["reason"]
    table = cli(capsys, "report", str(result), "--prices", str(prices)).stdout
    assert str(prices) in table and "tariff sheet" in table


def test_amortisation_table_for_a_two_phase_result(result, capsys, tmp_path):
    doc = json.loads(result.read_text())
    pre = copy.deepcopy(doc["phases"][0])
    fine = copy.deepcopy(doc["phases"][0])
    pre["name"], fine["name"] = "pretrain", "finetune"
    for phase in (pre, fine):
        phase["score"] = score_phase(phase["runs"]).to_dict()
    doc["phases"] = [pre, fine]
    doc["system"]["declared"] = {"human_effort": {"porting_hours": 3, "tuning_hours": 1,
                                                  "hourly_rate": 50, "currency": "USD"}}
    path = tmp_path / "two_phase.json"
    write_result(path, doc)
    out = cli(capsys, "report", str(path), "--amortise", "5").stdout
    assert "pre-training amortisation: cost per downstream task when one pretrain serves k" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("finetune ")]
    assert [row[1] for row in rows] == ["1", "5", "10", "100"]
    assert "human effort (declared)" in out
    assert next(x for x in out.splitlines() if x.startswith("cost ")).split()[1:4] == [
        "200", "USD", "declared"]
    account = report_json(capsys, str(path))["account"]
    assert [r["k"] for r in account["amortisation"]["rows"]] == [1, 10, 100]


def test_result_with_a_stored_account_reports_its_settings(result, capsys, tmp_path):
    doc = json.loads(result.read_text())
    doc["sustainability"] = build_account(doc, resolve_settings(doc=doc, region="NO"))
    path = tmp_path / "with_account.json"
    write_result(path, doc)
    account = report_json(capsys, str(path))["account"]
    assert account == doc["sustainability"]
    assert "region: NO (--region)" in cli(capsys, "report", str(path)).stdout


def test_bad_region_is_a_one_line_error(result, capsys):
    proc = cli(capsys, "report", str(result), "--region", "ATLANTIS")
    assert_one_line_error(proc, "--region ATLANTIS", "unknown region")
    assert proc.returncode == 2


def test_bad_prices_file_names_file_and_field(result, capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('currency = "EUR"\n[energy]\nper_kwh = 0.2\nsource = "somewhere"\n')
    assert_one_line_error(cli(capsys, "report", str(result), "--prices", str(bad)),
                          str(bad), "field energy.date", "source and a date")
    bad.write_text("[energy\n")
    assert_one_line_error(cli(capsys, "report", str(result), "--prices", str(bad)),
                          str(bad), "not valid TOML")
    assert_one_line_error(cli(capsys, "report", str(result), "--prices",
                              str(tmp_path / "absent.toml")), "no such prices file")


def test_bad_result_and_amortise_are_one_line_errors(result, capsys, tmp_path):
    assert_one_line_error(cli(capsys, "report", str(tmp_path / "nope.json")), "no such result")
    assert_one_line_error(cli(capsys, "report", str(result), "--amortise", "0"), "--amortise")
    assert_one_line_error(cli(capsys, "report", str(tmp_path)), "is a folder")
