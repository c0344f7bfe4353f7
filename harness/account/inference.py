"""The account of inference measurements (LoadGen scenarios) from their energy windows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenperf.account.costs import DeviceUse, carbon_figure, money_figures
from greenperf.account.energy import EnergyTotals
from greenperf.account.figures import JOULES_PER_KWH, figure, missing
from greenperf.account.settings import AccountSettings
from greenperf.labels import ESTIMATED, MEASURED, combine


def inference_account(total_joules: float | None, seconds: float, samples: int,
                      settings: AccountSettings, devices: DeviceUse, *,
                      energy_label: str = ESTIMATED, energy_source: str = "energy window",
                      reason: str | None = None, name: str = "inference") -> dict[str, Any]:
    """The account of one inference measurement from its joules, seconds and samples."""
    label = combine([energy_label])  # a "partly estimated" window is an estimate here
    if total_joules is None:
        why = reason or "energy not measured"
        energy = {k: missing(u, label, why) for k, u in
                  (("total", "J"), ("kwh", "kWh"), ("per_sample", "J/sample"),
                   ("average_power", "W"))}
    else:
        energy = {
            "total": figure(total_joules, "J", label, energy_source),
            "kwh": figure(total_joules / JOULES_PER_KWH, "kWh", label, "J / 3.6e6"),
            "per_sample": (figure(total_joules / samples, "J/sample", label,
                                  f"total J / {samples} samples")
                           if samples else missing("J/sample", label, "no samples")),
            "average_power": (figure(total_joules / seconds, "W", label, "total J / seconds")
                              if seconds > 0 else missing("W", label, "zero duration")),
        }
    seconds_fig = figure(seconds, "s", MEASURED, "measurement duration")
    return {"name": name,
            "energy": energy,
            "carbon": {"total": carbon_figure(energy["kwh"], settings.region)},
            "money": money_figures(energy["kwh"], seconds_fig, settings, devices),
            "time": {"total": seconds_fig},
            "data": {"samples": figure(samples, "samples", MEASURED, "samples processed")}}


def inference_items(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Inference measurements in a result, read defensively: ``inference.results`` (a list) or
    ``inference`` itself, each with ``energy`` (a window), ``duration_s`` and ``samples``."""
    section = doc.get("inference")
    if isinstance(section, list):
        return [i for i in section if isinstance(i, Mapping)]
    if not isinstance(section, Mapping):
        return []
    results = section.get("results")
    if isinstance(results, list):
        return [i for i in results if isinstance(i, Mapping)]
    return [section]


def inference_entry(item: Mapping[str, Any], settings: AccountSettings,
                     devices: DeviceUse) -> dict[str, Any]:
    window = item.get("energy") if isinstance(item.get("energy"), Mapping) else None
    seconds = float(item.get("duration_s") or (window or {}).get("seconds") or 0.0)
    samples = item.get("samples")
    if not isinstance(samples, int):
        rate = item.get("samples_per_second")
        samples = round(float(rate) * seconds) if isinstance(rate, (int, float)) else 0
    name = "/".join(str(item[k]) for k in ("scenario", "mode") if item.get(k)) or "inference"
    if window is None or window.get("total_joules") is None:
        return inference_account(None, seconds, samples, settings, devices, name=name,
                                 reason="energy not measured for this inference run")
    totals = EnergyTotals()
    totals.add(window)
    return inference_account(totals.joules, seconds, samples, settings, devices, name=name,
                             energy_label=totals.label, energy_source=totals.source)
