"""Prices: energy, CPU, GPU and whole-machine rates, each with its source and date.

The shipped price list (``harness/data/prices.toml``) holds averages and is ``estimated``;
prices a user supplies (a prices file, the system description's ``[prices]``) are
``declared``. Later sources override earlier ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from greenperf.errors import UsageError
from greenperf.labels import DECLARED, ESTIMATED

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_PRICES_FILE = "data/prices.toml"
DEFAULT_PRICES_ORIGIN = "greenperf default prices (harness/data/prices.toml)"

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
    text = resources.files("greenperf").joinpath(DEFAULT_PRICES_FILE).read_text(encoding="utf-8")
    return parse_prices(tomllib.loads(text), f"{DEFAULT_PRICES_FILE}: field ",
                        DEFAULT_PRICES_ORIGIN, ESTIMATED)
