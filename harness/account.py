"""The sustainability account of a result: energy, carbon, money, data and human effort.

``build_account(doc, settings)`` is a pure function of a result document and the account
settings (grid region, prices, amortisation k). It never invents a number: a figure that cannot
be computed is ``{"value": None, "reason": ...}``. Every figure is an object

    {"value": 123.4, "unit": "J", "label": "measured", "source": "nvml-energy-counter"}

whose label is one of ``measured``, ``estimated`` or ``declared``:

- energy is ``measured`` only when every reading of every window used was measured, otherwise
  ``estimated`` (a mix is kept as ``detail: "partly estimated"``);
- carbon is always ``estimated`` (annual grid averages);
- money takes the weaker label of its inputs (``estimated`` beats ``declared`` beats
  ``measured``): shipped prices are averages (``estimated``), prices the user supplies are
  ``declared``;
- human effort is ``declared``; time, sample counts and bytes are ``measured``.

Pre-training amortisation: when a workload has more than one phase and the first phase's name
starts with ``pretrain``, that phase is the shared pre-training and every later phase is one
downstream fine-tune. The cost per downstream task when one pre-training serves k fine-tunes is
``pretrain / k + finetune``, from the phases' to-target figures (the aggregate the time score
uses), for k = 1, 10, 100 and any k the settings add.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from harness.carbon import GridIntensity, grid_table
from harness.errors import UsageError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[no-redef]

ACCOUNT_VERSION = 1
MEASURED = "measured"
ESTIMATED = "estimated"
DECLARED = "declared"
LABELS = (MEASURED, ESTIMATED, DECLARED)
JOULES_PER_KWH = 3.6e6
AMORTISE_KS = (1, 10, 100)
PRETRAIN_PREFIX = "pretrain"
DEFAULT_PRICES_FILE = "data/prices.toml"
DEFAULT_PRICES_ORIGIN = "greenperf default prices (harness/data/prices.toml)"


# --- figures -------------------------------------------------------------------------------

def figure(value: float | None, unit: str, label: str, source: str, *,
           reason: str | None = None, detail: str | None = None) -> dict[str, Any]:
    """One labelled figure; ``value`` None needs a ``reason``."""
    if label not in LABELS:
        raise ValueError(f"label {label!r} is not one of {LABELS}")
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool)):
        value = float(value)  # counts stay integers; everything else is a float
    out: dict[str, Any] = {"value": value, "unit": unit,
                           "label": label, "source": source}
    if value is None:
        out["reason"] = reason or "not available"
    if detail:
        out["detail"] = detail
    return out


def missing(unit: str, label: str, reason: str, source: str = "") -> dict[str, Any]:
    return figure(None, unit, label, source, reason=reason)


def weakest_label(*labels: str) -> str:
    """The label of a figure computed from figures with ``labels``."""
    if ESTIMATED in labels:
        return ESTIMATED
    if DECLARED in labels:
        return DECLARED
    return MEASURED


def derive(unit: str, source: str, compute: Callable[..., float], *inputs: dict[str, Any],
           label: str | None = None, detail: str | None = None) -> dict[str, Any]:
    """A figure computed from other figures: missing if any input is, labelled by the weakest."""
    combined = label or weakest_label(*(f["label"] for f in inputs))
    for fig in inputs:
        if fig["value"] is None:
            return missing(unit, combined, fig.get("reason", "an input is not available"), source)
    return figure(compute(*(f["value"] for f in inputs)), unit, combined, source, detail=detail)


def _sum_figures(figs: list[dict[str, Any]], unit: str, source: str) -> dict[str, Any]:
    if not figs:
        return missing(unit, MEASURED, "no phases", source)
    return derive(unit, source, lambda *v: math.fsum(v), *figs)


# --- prices --------------------------------------------------------------------------------

_PRICE_KEYS = {"energy": ("per_kwh", "per kWh"), "cpu": ("per_vcpu_hour", "per vCPU-hour"),
               "machine": ("per_hour", "per machine-hour"), "gpu": ("per_gpu_hour", "per GPU-hour")}
_ENTRY_FIELDS = {"source", "date", "currency", "label", "origin", "match"}


@dataclass(frozen=True)
class Price:
    """One configured price, with its source and date."""

    name: str
    value: float
    per: str
    currency: str
    source: str
    date: str
    label: str
    origin: str
    match: tuple[str, ...] = ()

    def to_entry(self) -> dict[str, Any]:
        key = _PRICE_KEYS[self.name.split(".")[0]][0]
        entry: dict[str, Any] = {key: self.value, "currency": self.currency,
                                 "source": self.source, "date": self.date, "label": self.label,
                                 "origin": self.origin}
        if self.match:
            entry["match"] = list(self.match)
        return entry

    def describe(self) -> str:
        """Short form for figure sources; the full source and date are in the settings."""
        return f"{self.value:g} {self.currency} {self.per} [prices {self.name}, {self.date}]"

    def matches(self, model: str) -> bool:
        return any(re.search(rf"(?<![A-Za-z0-9]){re.escape(m)}(?![A-Za-z0-9])", model, re.I)
                   for m in self.match)


@dataclass(frozen=True)
class PriceBook:
    """Energy, CPU, GPU and whole-machine prices; later sources override earlier ones."""

    energy: Price | None = None
    cpu: Price | None = None
    machine: Price | None = None
    gpus: tuple[Price, ...] = ()
    origins: tuple[str, ...] = ()

    def overlay(self, other: PriceBook) -> PriceBook:
        gpus = {p.name: p for p in self.gpus}
        for price in other.gpus:
            gpus.pop(price.name, None)
        # The overriding file's GPU entries come first, so they win the first-match rule.
        return PriceBook(energy=other.energy or self.energy, cpu=other.cpu or self.cpu,
                         machine=other.machine or self.machine,
                         gpus=tuple(other.gpus) + tuple(gpus.values()),
                         origins=self.origins + other.origins)

    def gpu_for(self, model: str) -> Price | None:
        return next((p for p in self.gpus if p.matches(model)), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"origins": list(self.origins)}
        for name in ("energy", "cpu", "machine"):
            price = getattr(self, name)
            if price is not None:
                out[name] = price.to_entry()
        out["gpu"] = {p.name.split(".", 1)[1]: p.to_entry() for p in self.gpus}
        return out


def _entry(name: str, raw: Any, where: str, currency: str | None, origin: str,
           default_label: str) -> Price:
    here = f"{where}{name}"
    if not isinstance(raw, Mapping):
        raise UsageError(here, "must be a table")
    kind = name.split(".")[0]
    key, per = _PRICE_KEYS[kind]
    unknown = set(raw) - _ENTRY_FIELDS - {key}
    if unknown:
        raise UsageError(f"{here}.{sorted(unknown)[0]}",
                         f"unknown field (known: {', '.join(sorted(_ENTRY_FIELDS | {key}))})")
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0:
        raise UsageError(f"{here}.{key}", "missing, or not a number >= 0")
    for text_field in ("source", "date"):
        text = raw.get(text_field)
        if text is None or (isinstance(text, str) and not text.strip()):
            raise UsageError(f"{here}.{text_field}",
                             "missing: every price needs a source and a date")
    if not isinstance(raw["source"], str):
        raise UsageError(f"{here}.source", "must be a string")
    entry_currency = raw.get("currency", currency)
    if not isinstance(entry_currency, str) or not entry_currency.strip():
        raise UsageError(f"{here}.currency", "missing: set `currency` at the top of the file "
                                             "or in the entry")
    label = raw.get("label", default_label)
    if label not in (ESTIMATED, DECLARED):
        raise UsageError(f"{here}.label", f"{label!r} is not 'estimated' or 'declared'")
    match: tuple[str, ...] = ()
    if kind == "gpu":
        raw_match = raw.get("match", name.split(".", 1)[1])
        match = (raw_match,) if isinstance(raw_match, str) else tuple(raw_match) if isinstance(
            raw_match, list) else ()
        if not match or not all(isinstance(m, str) and m.strip() for m in match):
            raise UsageError(f"{here}.match", "must be a non-empty string or list of strings")
    elif "match" in raw:
        raise UsageError(f"{here}.match", "only [gpu.NAME] entries take `match`")
    return Price(name=name, value=float(value), per=per, currency=entry_currency.strip(),
                 source=raw["source"].strip(), date=str(raw["date"]), label=label,
                 origin=str(raw.get("origin", origin)), match=match)


def parse_prices(data: Mapping[str, Any], where: str, origin: str,
                 default_label: str = DECLARED) -> PriceBook:
    """Validate a price table (a prices TOML, or the same shape recorded in a result).

    ``where`` prefixes every error's field name, e.g. ``"prices.toml: field "`` or
    ``"system.toml: field prices."``.
    """
    currency = data.get("currency")
    if currency is not None and not isinstance(currency, str):
        raise UsageError(f"{where}currency", "must be a string such as 'USD'")
    known = {"currency", "origins", "energy", "cpu", "machine", "gpu"}
    for key in data:
        if key not in known:
            raise UsageError(f"{where}{key}", f"unknown field (known: {', '.join(sorted(known))})")
    prices: dict[str, Price | None] = {}
    for name in ("energy", "cpu", "machine"):
        raw = data.get(name)
        prices[name] = None if raw is None else _entry(name, raw, where, currency, origin,
                                                       default_label)
    gpu_table = data.get("gpu", {})
    if not isinstance(gpu_table, Mapping):
        raise UsageError(f"{where}gpu", "must be a table of [gpu.NAME] entries")
    gpus = tuple(_entry(f"gpu.{name}", raw, where, currency, origin, default_label)
                 for name, raw in gpu_table.items())
    return PriceBook(energy=prices["energy"], cpu=prices["cpu"], machine=prices["machine"],
                     gpus=gpus, origins=(origin,))


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise UsageError(str(path), f"no such {what}") from exc
    except IsADirectoryError as exc:
        raise UsageError(str(path), f"is a folder, not a {what}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(str(path), f"not valid TOML ({exc})") from exc


def load_prices_file(path: Path) -> PriceBook:
    """A user's prices TOML (same format as the shipped one); its prices are ``declared``."""
    data = _read_toml(path, "prices file")
    return parse_prices(data, f"{path}: field ", str(path), DECLARED)


def default_prices() -> PriceBook:
    text = resources.files("harness").joinpath(DEFAULT_PRICES_FILE).read_text(encoding="utf-8")
    return parse_prices(tomllib.loads(text), f"{DEFAULT_PRICES_FILE}: field ",
                        DEFAULT_PRICES_ORIGIN, ESTIMATED)


# --- settings ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountSettings:
    """What the account needs beyond the result: grid region, prices, extra amortisation k."""

    region: GridIntensity
    region_chosen_by: str
    prices: PriceBook
    amortise: int | None = None

    @property
    def amortise_ks(self) -> list[int]:
        return sorted(set(AMORTISE_KS) | ({self.amortise} if self.amortise else set()))

    def region_line(self) -> str:
        return f"{self.region.code} ({self.region_chosen_by})"

    def to_dict(self) -> dict[str, Any]:
        region = self.region.to_dict()
        region["chosen_by"] = self.region_chosen_by
        return {"region": region, "prices": self.prices.to_dict(), "amortise": self.amortise,
                "amortise_k": self.amortise_ks}


def _check_amortise(amortise: int | None) -> int | None:
    if amortise is None:
        return None
    if isinstance(amortise, bool) or not isinstance(amortise, int) or amortise < 1:
        raise UsageError("--amortise", f"{amortise!r} must be an integer >= 1")
    return amortise


def resolve_settings(*, region: str | None = None, prices_file: Path | None = None,
                     amortise: int | None = None, doc: Mapping[str, Any] | None = None,
                     where: str = "result") -> AccountSettings:
    """Settings from the options given, else what ``doc`` recorded or declares, else defaults.

    Region: ``region`` > the region the result's account recorded > the system description's
    ``region`` > WORLD. Prices: the book the result's account recorded (else the shipped
    defaults overlaid with the system description's ``[prices]``), then ``prices_file`` on top.
    ``where`` names the result file in error messages.
    """
    table = grid_table()
    system = (doc or {}).get("system") or {}
    declared = system.get("declared") or {}
    declared_where = str(system.get("declared_source") or "system description")
    recorded = ((doc or {}).get("sustainability") or {}).get("settings") or {}

    if region is not None:
        grid, chosen_by = table.lookup(region, "--region"), "--region"
    elif recorded.get("region", {}).get("code"):
        grid = table.lookup(recorded["region"]["code"],
                            f"{where}: field sustainability.settings.region.code")
        chosen_by = str(recorded["region"].get("chosen_by") or "recorded in the result")
    elif declared.get("region") is not None:
        if not isinstance(declared["region"], str):
            raise UsageError(f"{declared_where}: field region", "must be a region code string")
        grid = table.lookup(declared["region"], f"{declared_where}: field region")
        chosen_by = "system description"
    else:
        grid, chosen_by = table.default(), "default"

    if isinstance(recorded.get("prices"), Mapping):
        book = parse_prices(recorded["prices"], f"{where}: field sustainability.settings.prices.",
                            "recorded in the result")
        book = replace(book, origins=tuple(recorded["prices"].get("origins") or book.origins))
    else:
        book = default_prices()
        if declared.get("prices") is not None:
            if not isinstance(declared["prices"], Mapping):
                raise UsageError(f"{declared_where}: field prices", "must be a table")
            book = book.overlay(parse_prices(declared["prices"], f"{declared_where}: field prices.",
                                             f"{declared_where} [prices]", DECLARED))
    if prices_file is not None:
        book = book.overlay(load_prices_file(Path(prices_file)))
    if amortise is None and isinstance(recorded.get("amortise"), int):
        amortise = recorded["amortise"]
    return AccountSettings(region=grid, region_chosen_by=chosen_by, prices=book,
                           amortise=_check_amortise(amortise))


# --- devices -------------------------------------------------------------------------------

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


# --- energy windows ------------------------------------------------------------------------

@dataclass
class EnergyTotals:
    """Energy windows of a set of runs, summed, with their combined label and sources."""

    joules: float = 0.0
    seconds: float = 0.0
    labels: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    components: dict[str, float] = field(default_factory=dict)
    component_labels: dict[str, set[str]] = field(default_factory=dict)
    lower_bound: bool = False
    notes: list[str] = field(default_factory=list)

    def add(self, window: Mapping[str, Any]) -> None:
        self.joules += float(window["total_joules"])
        self.seconds += float(window.get("seconds") or 0.0)
        self.lower_bound = self.lower_bound or bool(window.get("lower_bound"))
        readings = window.get("readings") or []
        for reading in readings:
            component = str(reading.get("component", "?"))
            self.components[component] = (self.components.get(component, 0.0)
                                          + float(reading.get("joules") or 0.0))
            label = _window_label(reading.get("label"))
            self.component_labels.setdefault(component, set()).add(label)
            self.labels.add(label)
            if reading.get("source"):
                self.sources.add(str(reading["source"]))
        if not readings:
            self.labels.add(_window_label(window.get("label")))
        for note in window.get("notes") or []:
            if note not in self.notes:
                self.notes.append(note)

    @property
    def label(self) -> str:
        return MEASURED if self.labels == {MEASURED} else ESTIMATED

    @property
    def detail(self) -> str | None:
        parts = []
        if len(self.labels) > 1:
            parts.append("partly estimated")
        if self.lower_bound:
            parts.append("lower bound: part of a window could not be measured")
        return "; ".join(parts) or None

    @property
    def source(self) -> str:
        return " + ".join(sorted(self.sources)) or "energy windows"


def _window_label(label: Any) -> str:
    # Meters say "partly estimated" for mixed windows; the account's enum has no such label.
    return MEASURED if label == MEASURED else ESTIMATED


def _ran(run: Mapping[str, Any]) -> bool:
    """False for a run record of a phase that was skipped (nothing ran, nothing to measure)."""
    return run.get("energy") is not None or float(run.get("tta_seconds") or 0.0) > 0.0


def _joules(run: Mapping[str, Any]) -> float | None:
    window = run.get("energy")
    if not isinstance(window, Mapping) or window.get("total_joules") is None:
        return None
    return float(window["total_joules"])


# --- a training phase ----------------------------------------------------------------------

def _kept_runs(phase: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str | None]:
    """The runs the time score averaged, or why there is no score."""
    score = phase.get("score") or {}
    if score.get("value") is None:
        return [], str(score.get("reason") or "no score")
    dropped = set(score.get("dropped_runs") or [])
    kept = [r for r in phase["runs"] if r.get("status") == "success" and r["index"] not in dropped]
    return kept, None


def _carbon(kwh: dict[str, Any], grid: GridIntensity) -> dict[str, Any]:
    source = (f"kWh x {grid.gco2e_per_kwh:g} gCO2e/kWh ({grid.code} {grid.name}, {grid.year} "
              "annual average, Ember)")
    return derive("gCO2e", source, lambda k: k * grid.gco2e_per_kwh, kwh, label=ESTIMATED)


def _money(kwh: dict[str, Any], seconds: dict[str, Any], settings: AccountSettings,
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
        total = missing("?", weakest_label(energy_cost["label"], device_cost["label"]),
                        f"energy and device prices are in different currencies "
                        f"({energy_cost['unit']}, {device_cost['unit']})")
    else:
        total = derive(energy_cost["unit"] if energy_cost["value"] is not None
                       else device_cost["unit"], "energy cost + device cost",
                       lambda a, b: a + b, energy_cost, device_cost)
    return {"energy_cost": energy_cost, "device_hours": hours, "device_cost": device_cost,
            "total": total}


def _phase_energy(runs: list[Mapping[str, Any]], kept: list[Mapping[str, Any]],
                  no_score: str | None, method: str) -> tuple[dict, dict, EnergyTotals | None]:
    ran = [r for r in runs if _ran(r)]
    unmeasured = [r["index"] for r in ran if _joules(r) is None]
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
    success = [_joules(r) for r in ran if r.get("status") == "success"]
    energy = {
        "total": figure(totals.joules, "J", label, f"sum of {len(ran)} run windows ({source})",
                        detail=detail),
        "kwh": figure(totals.joules / JOULES_PER_KWH, "kWh", label, "J / 3.6e6", detail=detail),
        "to_target_median": (figure(statistics.median(success), "J", label,
                                    f"median over {len(success)} successful runs", detail=detail)
                             if success else missing("J", label, "no successful run")),
        "to_target": (missing("J", label, no_score or "no score") if no_score else figure(
            math.fsum(_joules(r) for r in kept) / len(kept), "J", label,
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
        name: figure(joules, "J", MEASURED if totals.component_labels[name] == {MEASURED}
                     else ESTIMATED, f"sum of {name} readings")
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
    ran = [r for r in runs if _ran(r)]
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
    carbon = {"total": _carbon(energy["kwh"], settings.region),
              "to_target": _carbon(derive("kWh", "J / 3.6e6", lambda j: j / JOULES_PER_KWH,
                                          energy["to_target"]), settings.region)}
    money = _money(energy["kwh"], seconds_total, settings, devices)
    target_kwh = derive("kWh", "J / 3.6e6", lambda j: j / JOULES_PER_KWH, energy["to_target"])
    money["to_target"] = _money(target_kwh, to_target_s, settings, devices)["total"]
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


def _totals(phases: list[dict[str, Any]]) -> dict[str, Any]:
    def total(group: str, key: str, unit: str) -> dict[str, Any]:
        figs = [p[group][key] for p in phases]
        units = {f["unit"] for f in figs if f["value"] is not None}
        if len(units) > 1:
            return missing("?", weakest_label(*(f["label"] for f in figs)),
                           f"phases differ in unit ({', '.join(sorted(units))})")
        return _sum_figures(figs, units.pop() if units else unit, f"sum over phases ({key})")

    return {
        "energy": {"total": total("energy", "total", "J"), "kwh": total("energy", "kwh", "kWh")},
        "carbon": {"total": total("carbon", "total", "gCO2e")},
        "money": {k: total("money", k, "?") for k in ("energy_cost", "device_cost", "total")},
        "time": {"total": total("time", "total", "s")},
    }


# --- pre-training amortisation -------------------------------------------------------------

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


# --- human effort --------------------------------------------------------------------------

def human_effort(declared: Mapping[str, Any], where: str = "system description") -> dict:
    """Declared engineer-hours and their cost; says 'not declared' when absent."""
    effort = declared.get("human_effort")
    source = f"{where} [human_effort]"
    if not isinstance(effort, Mapping) or not effort:
        reason = "not declared (add [human_effort] to the system description TOML)"
        return {"declared": False,
                **{k: missing("h", DECLARED, reason, source)
                   for k in ("porting_hours", "tuning_hours", "total_hours")},
                "cost": missing("?", DECLARED, reason, source)}
    if effort.get("source"):
        source = f"{source}: {effort['source']}"

    def hours(key: str) -> dict[str, Any]:
        value = effort.get(key)
        return (figure(value, "h", DECLARED, source) if isinstance(value, (int, float))
                else missing("h", DECLARED, f"{key} not declared", source))

    porting, tuning = hours("porting_hours"), hours("tuning_hours")
    known = [f for f in (porting, tuning) if f["value"] is not None]
    total = (figure(math.fsum(f["value"] for f in known), "h", DECLARED, "porting + tuning",
                    detail=None if len(known) == 2 else "only part of the hours declared")
             if known else missing("h", DECLARED, "no hours declared", source))
    rate, currency = effort.get("hourly_rate"), effort.get("currency")
    if not isinstance(rate, (int, float)):
        cost = missing("?", DECLARED, "hourly_rate not declared", source)
    elif not currency:
        cost = missing("?", DECLARED, "hourly_rate declared without a currency", source)
    else:
        cost = derive(str(currency), f"total hours x {rate:g} {currency}/h", lambda h: h * rate,
                      total)
    return {"declared": True, "porting_hours": porting, "tuning_hours": tuning,
            "total_hours": total, "cost": cost}


# --- inference -----------------------------------------------------------------------------

def inference_account(total_joules: float | None, seconds: float, samples: int,
                      settings: AccountSettings, devices: DeviceUse, *,
                      energy_label: str = ESTIMATED, energy_source: str = "energy window",
                      reason: str | None = None, name: str = "inference") -> dict[str, Any]:
    """The account of one inference measurement from its joules, seconds and samples."""
    label = MEASURED if energy_label == MEASURED else ESTIMATED
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
            "carbon": {"total": _carbon(energy["kwh"], settings.region)},
            "money": _money(energy["kwh"], seconds_fig, settings, devices),
            "time": {"total": seconds_fig},
            "data": {"samples": figure(samples, "samples", MEASURED, "samples processed")}}


def _inference_items(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
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


def _inference_entry(item: Mapping[str, Any], settings: AccountSettings,
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


# --- the account ---------------------------------------------------------------------------

def build_account(doc: Mapping[str, Any], settings: AccountSettings) -> dict[str, Any]:
    """The sustainability account of result ``doc`` (a pure function; ``doc`` is not changed)."""
    devices = device_use(doc)
    phases = [phase_account(p, settings, devices) for p in doc.get("phases") or []]
    system = doc.get("system") or {}
    notes = [f"carbon is estimated from the annual average grid intensity of "
             f"{settings.region.code} ({settings.region.name}, {settings.region.year}); "
             "region: " + settings.region_line()]
    for phase in phases:
        for note in phase.pop("energy_notes", []):
            if note not in notes:
                notes.append(note)
    account: dict[str, Any] = {
        "version": ACCOUNT_VERSION,
        "kind": doc.get("kind", "training"),
        "settings": settings.to_dict(),
        "devices": devices.to_dict(),
        "phases": phases,
        "totals": _totals(phases),
        "human_effort": human_effort(system.get("declared") or {},
                                     str(system.get("declared_source") or "system description")),
        "amortisation": amortisation(phases, settings.amortise_ks),
        "inference": None,
        "notes": notes,
    }
    if doc.get("kind") == "inference":
        account["inference"] = [_inference_entry(item, settings, devices)
                                for item in _inference_items(doc)]
    return account
