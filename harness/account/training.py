"""The account of training phases: energy, carbon, money, time and data per phase, their
totals, and the cost of a shared pre-training amortised over k fine-tunes.

Pre-training amortisation: when a workload has more than one phase and the first phase's name
starts with ``pretrain``, that phase is the shared pre-training and every later phase is one
downstream fine-tune. The cost per downstream task when one pre-training serves k fine-tunes is
``pretrain / k + finetune``, from the phases' to-target figures (the aggregate the time score
uses), for k = 1, 10, 100 and any k the settings add.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from greenperf.account.costs import DeviceUse, carbon_figure, money_figures
from greenperf.account.energy import EnergyTotals, did_run, run_joules
from greenperf.account.figures import JOULES_PER_KWH, derive, figure, missing, sum_figures
from greenperf.account.settings import AccountSettings
from greenperf.labels import MEASURED, combine

PRETRAIN_PREFIX = "pretrain"


def _kept_runs(phase: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str | None]:
    """The runs the time score averaged, or why there is no score."""
    score = phase.get("score") or {}
    if score.get("value") is None:
        return [], str(score.get("reason") or "no score")
    dropped = set(score.get("dropped_runs") or [])
    kept = [r for r in phase["runs"] if r.get("status") == "success" and r["index"] not in dropped]
    return kept, None


def _phase_energy(runs: list[Mapping[str, Any]], kept: list[Mapping[str, Any]],
                  no_score: str | None, method: str) -> tuple[dict, dict, EnergyTotals | None]:
    ran = [r for r in runs if did_run(r)]
    unmeasured = [r["index"] for r in ran if run_joules(r) is None]
    if not ran or unmeasured:
        reason = ("no runs yet" if not ran else
                  "energy not measured (run without --no-energy to measure it)"
                  if len(unmeasured) == len(ran) else
                  f"energy not measured for run(s) {', '.join(map(str, unmeasured))}")
        units = {"total": "J", "kwh": "kWh", "to_target_median": "J", "to_target": "J",
                 "per_training_sample": "J/sample", "average_power": "W"}
        return {k: missing(u, MEASURED, reason) for k, u in units.items()}, {}, None
    totals = EnergyTotals()
    for run in ran:
        totals.add(run["energy"])
    label, detail, source = totals.label, totals.detail, totals.source
    samples = sum(int(r.get("samples_seen") or 0) for r in ran)
    success = [run_joules(r) for r in ran if r.get("status") == "success"]
    energy = {
        "total": figure(totals.joules, "J", label, f"sum of {len(ran)} run windows ({source})",
                        detail=detail),
        "kwh": figure(totals.joules / JOULES_PER_KWH, "kWh", label, "J / 3.6e6", detail=detail),
        "to_target_median": (figure(statistics.median(success), "J", label,
                                    f"median over {len(success)} successful runs", detail=detail)
                             if success else missing("J", label, "no successful run")),
        "to_target": (missing("J", label, no_score or "no score") if no_score else figure(
            math.fsum(run_joules(r) for r in kept) / len(kept), "J", label,
            f"{method} of run windows over runs {', '.join(str(r['index']) for r in kept)} "
            "(the runs the time score kept)", detail=detail)),
        "per_training_sample": (figure(totals.joules / samples, "J/sample", label,
                                       f"total J / {samples} samples seen", detail=detail)
                                if samples else missing("J/sample", label, "no samples seen")),
        "average_power": (figure(totals.joules / totals.seconds, "W", label,
                                 "total J / total window seconds", detail=detail)
                          if totals.seconds > 0 else missing("W", label, "zero window time")),
    }
    components = {
        name: figure(joules, "J", combine(totals.component_labels[name]),
                     f"sum of {name} readings")
        for name, joules in sorted(totals.components.items())
    }
    return energy, components, totals


def _phase_data(phase: Mapping[str, Any], ran: list[Mapping[str, Any]]) -> dict[str, Any]:
    dataset = phase.get("dataset") or {}
    train_size = int(dataset.get("train_samples") or 0)
    eval_size = int(dataset.get("eval_samples") or 0)
    seen = sum(int(r.get("samples_seen") or 0) for r in ran)
    most = max((int(r.get("samples_seen") or 0) for r in ran), default=0)
    evals = sum(int(r["evals"]) if r.get("evals") is not None else len(r.get("eval_curve") or [])
                for r in ran)
    return {
        "samples_seen": figure(seen, "samples", MEASURED, f"sum over {len(ran)} runs"),
        "unique_samples": figure(min(train_size, most), "samples", MEASURED,
                                 f"min(train set {train_size}, most samples one run saw {most})"),
        "epochs": figure(math.fsum(float(r.get("epochs") or 0.0) for r in ran), "epochs",
                         MEASURED, "sum of run epochs (samples seen / train set size)"),
        "dataset_bytes": figure(int(dataset.get("nbytes") or 0), "B", MEASURED,
                                f"dataset {dataset.get('name', '?')} "
                                f"({dataset.get('source', '?')})"),
        "eval_samples": figure(evals * eval_size, "samples", MEASURED,
                               f"{evals} evaluations x {eval_size} eval samples"),
    }


def phase_account(phase: Mapping[str, Any], settings: AccountSettings,
                  devices: DeviceUse) -> dict[str, Any]:
    """The account of one training phase over all its runs."""
    runs = list(phase.get("runs") or [])
    ran = [r for r in runs if did_run(r)]
    score = phase.get("score") or {}
    kept, no_score = _kept_runs(phase)
    method = str(score.get("method") or "mean")
    energy, components, totals = _phase_energy(runs, kept, no_score, method)

    seconds_total = figure(math.fsum(float(r.get("tta_seconds") or 0.0) for r in ran), "s",
                           MEASURED, f"sum of TTA over {len(ran)} runs")
    to_target_s = (figure(score["value"], "s", MEASURED, f"time score ({method} of TTA)")
                   if score.get("value") is not None
                   else missing("s", MEASURED, no_score or "no score"))
    time = {"total": seconds_total, "to_target": to_target_s,
            "to_target_median": (figure(score["median"], "s", MEASURED,
                                        "median TTA of successful runs")
                                 if score.get("median") is not None
                                 else missing("s", MEASURED, "no successful run"))}
    carbon = {"total": carbon_figure(energy["kwh"], settings.region),
              "to_target": carbon_figure(derive("kWh", "J / 3.6e6", lambda j: j / JOULES_PER_KWH,
                                          energy["to_target"]), settings.region)}
    money = money_figures(energy["kwh"], seconds_total, settings, devices)
    target_kwh = derive("kWh", "J / 3.6e6", lambda j: j / JOULES_PER_KWH, energy["to_target"])
    money["to_target"] = money_figures(target_kwh, to_target_s, settings, devices)["total"]
    money["to_target"]["source"] = ("to-target kWh x energy price + to-target time x device "
                                    "price")
    out: dict[str, Any] = {
        "name": phase.get("name", "?"),
        "runs": len(runs),
        "successful_runs": sum(1 for r in runs if r.get("status") == "success"),
        "score_runs": [r["index"] for r in kept],
        "score_method": method,
        "energy": energy,
        "energy_components": components,
        "carbon": carbon,
        "money": money,
        "time": time,
        "data": _phase_data(phase, ran),
    }
    if totals is not None and totals.notes:
        out["energy_notes"] = list(totals.notes)
    return out


def account_totals(phases: list[dict[str, Any]]) -> dict[str, Any]:
    def total(group: str, key: str, unit: str) -> dict[str, Any]:
        figs = [p[group][key] for p in phases]
        units = {f["unit"] for f in figs if f["value"] is not None}
        if len(units) > 1:
            return missing("?", combine(f["label"] for f in figs),
                           f"phases differ in unit ({', '.join(sorted(units))})")
        return sum_figures(figs, units.pop() if units else unit, f"sum over phases ({key})")

    return {
        "energy": {"total": total("energy", "total", "J"), "kwh": total("energy", "kwh", "kWh")},
        "carbon": {"total": total("carbon", "total", "gCO2e")},
        "money": {k: total("money", k, "?") for k in ("energy_cost", "device_cost", "total")},
        "time": {"total": total("time", "total", "s")},
    }


def amortisation(phases: list[dict[str, Any]], ks: Iterable[int]) -> dict[str, Any] | None:
    """Cost per downstream task when one pre-training serves k fine-tunes (see module doc)."""
    if len(phases) < 2 or not str(phases[0]["name"]).lower().startswith(PRETRAIN_PREFIX):
        return None
    pre = phases[0]
    quantities = {"energy": ("energy", "to_target"), "carbon": ("carbon", "to_target"),
                  "money": ("money", "to_target"), "time": ("time", "to_target")}
    rows = []
    for fine in phases[1:]:
        for k in ks:
            row: dict[str, Any] = {"task": fine["name"], "k": k}
            for name, (group, key) in quantities.items():
                a, b = pre[group][key], fine[group][key]
                unit = a["unit"] if a["value"] is not None else b["unit"]
                row[name] = derive(unit, f"{pre['name']} / {k} + {fine['name']} (to target)",
                                   lambda x, y, k=k: x / k + y, a, b)
            rows.append(row)
    return {"pretrain_phase": pre["name"], "finetune_phases": [p["name"] for p in phases[1:]],
            "rule": "first phase named pretrain* is the shared pre-training; each later phase "
                    "is one downstream task; per task = pretrain / k + finetune, to-target "
                    "figures",
            "rows": rows}
