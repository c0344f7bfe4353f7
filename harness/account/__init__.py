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

The package, one module per part: ``figures`` (labelled figures), ``prices``, ``settings``,
``costs`` (devices, carbon, money), ``energy`` (energy windows summed), ``training`` (phases,
totals, pre-training amortisation), ``inference`` and ``effort`` (human effort). The labels
and their combine rule are ``greenperf.labels``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenperf.account.costs import DeviceRate, DeviceUse, device_rate, device_use
from greenperf.account.effort import human_effort
from greenperf.account.energy import EnergyTotals
from greenperf.account.figures import (
    DECLARED,
    ESTIMATED,
    JOULES_PER_KWH,
    LABELS,
    MEASURED,
    derive,
    figure,
    missing,
)
from greenperf.account.inference import inference_account, inference_entry, inference_items
from greenperf.account.prices import (
    DEFAULT_PRICES_FILE,
    DEFAULT_PRICES_ORIGIN,
    Price,
    PriceBook,
    default_prices,
    load_prices_file,
    parse_prices,
)
from greenperf.account.settings import AMORTISE_KS, AccountSettings, resolve_settings
from greenperf.account.training import (
    PRETRAIN_PREFIX,
    account_totals,
    amortisation,
    phase_account,
)

__all__ = [
    "ACCOUNT_VERSION",
    "AMORTISE_KS",
    "DECLARED",
    "DEFAULT_PRICES_FILE",
    "DEFAULT_PRICES_ORIGIN",
    "ESTIMATED",
    "JOULES_PER_KWH",
    "LABELS",
    "MEASURED",
    "PRETRAIN_PREFIX",
    "AccountSettings",
    "DeviceRate",
    "DeviceUse",
    "EnergyTotals",
    "Price",
    "PriceBook",
    "amortisation",
    "build_account",
    "default_prices",
    "derive",
    "device_rate",
    "device_use",
    "figure",
    "human_effort",
    "inference_account",
    "load_prices_file",
    "missing",
    "parse_prices",
    "phase_account",
    "resolve_settings",
]

ACCOUNT_VERSION = 1


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
        "totals": account_totals(phases),
        "human_effort": human_effort(system.get("declared") or {},
                                     str(system.get("declared_source") or "system description")),
        "amortisation": amortisation(phases, settings.amortise_ks),
        "inference": None,
        "notes": notes,
    }
    if doc.get("kind") == "inference":
        account["inference"] = [inference_entry(item, settings, devices)
                                for item in inference_items(doc)]
    return account
