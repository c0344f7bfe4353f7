"""Account settings: grid region, price book and extra amortisation k, and where each came
from (an option, the result's recorded account, its system description, or the default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from greenperf.account.prices import PriceBook, default_prices, load_prices_file, parse_prices
from greenperf.carbon import GridIntensity, grid_table
from greenperf.errors import UsageError
from greenperf.labels import DECLARED

AMORTISE_KS = (1, 10, 100)


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
