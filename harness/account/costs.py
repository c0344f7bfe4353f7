"""What a span of work costs: carbon from its energy, money from its energy and device-hours.

Devices: a run is billed for the GPUs it used, or for all logical CPUs of the machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greenperf.account.figures import derive, figure, missing
from greenperf.account.prices import Price, PriceBook
from greenperf.account.settings import AccountSettings
from greenperf.carbon import GridIntensity
from greenperf.labels import ESTIMATED, combine


@dataclass(frozen=True)
class DeviceUse:
    """What a run occupies and is billed for: ``count`` GPUs, or the machine's logical CPUs."""

    kind: str
    count: int
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "model": self.model}

    @property
    def unit(self) -> str:
        return "GPU-h" if self.kind == "gpu" else "vCPU-h"


def device_use(doc: Mapping[str, Any]) -> DeviceUse:
    """GPUs used (one per process unless the config records ``world_size``) or the machine's
    logical CPUs (a rented machine bills all of them, busy or not)."""
    config = doc.get("config") or {}
    auto = (doc.get("system") or {}).get("auto") or {}
    device = str(config.get("device") or "cpu")
    count = int(config.get("world_size") or 1)
    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        gpus = (auto.get("gpus") or {}).get("devices") or []
        names = [g.get("name", "") for g in gpus if g.get("index") == index] or [
            g.get("name", "") for g in gpus]
        return DeviceUse("gpu", count, names[0] if names else "unknown GPU")
    cpus = int(auto.get("logical_cpus") or auto.get("usable_cpus") or 1)
    return DeviceUse("cpu", cpus * count, str(auto.get("cpu_model") or "unknown CPU"))


@dataclass(frozen=True)
class DeviceRate:
    """The hourly price of the devices a run occupies, or why there is none."""

    per_hour: float | None
    currency: str | None
    label: str
    source: str
    reason: str | None = None
    price: Price | None = None


def device_rate(book: PriceBook, devices: DeviceUse) -> DeviceRate:
    if book.machine is not None:
        p = book.machine
        return DeviceRate(p.value, p.currency, p.label, f"machine price {p.describe()}", price=p)
    if devices.kind == "gpu":
        price = book.gpu_for(devices.model)
        if price is None:
            return DeviceRate(None, None, ESTIMATED, "prices [gpu.*]",
                              f"no [gpu.NAME] price matches {devices.model!r}; add one with "
                              "--prices")
        return DeviceRate(price.value * devices.count, price.currency, price.label,
                          f"{devices.count} x {devices.model} at {price.describe()}",
                          price=price)
    if book.cpu is None:
        return DeviceRate(None, None, ESTIMATED, "prices [cpu]", "no [cpu] price configured")
    p = book.cpu
    return DeviceRate(p.value * devices.count, p.currency, p.label,
                      f"{devices.count} logical CPUs ({devices.model}) at {p.describe()}",
                      price=p)


def carbon_figure(kwh: dict[str, Any], grid: GridIntensity) -> dict[str, Any]:
    source = (f"kWh x {grid.gco2e_per_kwh:g} gCO2e/kWh ({grid.code} {grid.name}, {grid.year} "
              "annual average, Ember)")
    return derive("gCO2e", source, lambda k: k * grid.gco2e_per_kwh, kwh, label=ESTIMATED)


def money_figures(kwh: dict[str, Any], seconds: dict[str, Any], settings: AccountSettings,
           devices: DeviceUse) -> dict[str, dict[str, Any]]:
    """Energy cost, device-hours, device cost and their total for one span of work."""
    energy_price = settings.prices.energy
    if energy_price is None:
        energy_cost = missing("?", ESTIMATED, "no [energy] price configured", "prices [energy]")
    else:
        price_fig = figure(energy_price.value, f"{energy_price.currency}/kWh", energy_price.label,
                           energy_price.describe())
        energy_cost = derive(energy_price.currency, f"kWh x {energy_price.describe()}",
                             lambda k, p: k * p, kwh, price_fig)
    hours = derive(devices.unit, f"seconds x {devices.count} {devices.kind.upper()}(s) / 3600",
                   lambda s: s * devices.count / 3600.0, seconds)
    rate = device_rate(settings.prices, devices)
    if rate.per_hour is None:
        device_cost = missing("?", rate.label, rate.reason or "no device price", rate.source)
    else:
        rate_fig = figure(rate.per_hour, f"{rate.currency}/h", rate.label, rate.source)
        device_cost = derive(str(rate.currency), f"hours x {rate.source}",
                             lambda s, r: s / 3600.0 * r, seconds, rate_fig)
    if energy_cost["value"] is not None and device_cost["value"] is not None and (
            energy_cost["unit"] != device_cost["unit"]):
        total = missing("?", combine((energy_cost["label"], device_cost["label"])),
                        f"energy and device prices are in different currencies "
                        f"({energy_cost['unit']}, {device_cost['unit']})")
    else:
        total = derive(energy_cost["unit"] if energy_cost["value"] is not None
                       else device_cost["unit"], "energy cost + device cost",
                       lambda a, b: a + b, energy_cost, device_cost)
    return {"energy_cost": energy_cost, "device_hours": hours, "device_cost": device_cost,
            "total": total}
