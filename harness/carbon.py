"""Grid carbon intensity by region, from the table shipped in ``harness/data/grid_intensity.json``.

The table holds annual averages (Ember's yearly data, via Our World in Data, CC BY 4.0), so
every carbon figure derived from it is an estimate: the real intensity of a run depends on the
hour and the local grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from greenperf.errors import UsageError

TABLE_FILE = "data/grid_intensity.json"


@dataclass(frozen=True)
class GridIntensity:
    """One region's average grid intensity, with where the figure comes from."""

    code: str
    name: str
    gco2e_per_kwh: float
    year: int
    source: str
    is_default: bool

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "gco2e_per_kwh": self.gco2e_per_kwh,
                "year": self.year, "source": self.source, "default": self.is_default}


@dataclass(frozen=True)
class GridTable:
    """The shipped table: regions by code, aliases, the default region and attribution."""

    regions: dict[str, dict[str, Any]]
    aliases: dict[str, str]
    default_code: str
    unit: str
    attribution: str
    notes: tuple[str, ...]

    def codes(self) -> list[str]:
        return list(self.regions)

    def lookup(self, code: str | None, where: str = "--region") -> GridIntensity:
        """The region ``code`` (case-insensitive, aliases allowed), or the default when None."""
        wanted = self.default_code if code is None else str(code).strip().upper()
        wanted = self.aliases.get(wanted, wanted)
        entry = self.regions.get(wanted)
        if entry is None:
            raise UsageError(f"{where} {code}",
                             f"unknown region (known: {', '.join(self.codes())})")
        return GridIntensity(code=wanted, name=entry["name"], gco2e_per_kwh=float(entry["value"]),
                             year=int(entry["year"]), source=entry["source"],
                             is_default=wanted == self.default_code)

    def default(self) -> GridIntensity:
        return self.lookup(None)


@lru_cache(maxsize=1)
def grid_table() -> GridTable:
    """Load the shipped table once; a broken table is a packaging bug, so it raises loudly."""
    raw = json.loads(resources.files("greenperf").joinpath(TABLE_FILE).read_text(encoding="utf-8"))
    for code, entry in raw["regions"].items():
        missing = {"name", "value", "year", "source"} - set(entry)
        if missing:
            raise ValueError(f"{TABLE_FILE}: region {code} lacks {sorted(missing)}")
    return GridTable(regions=dict(raw["regions"]), aliases=dict(raw.get("aliases", {})),
                     default_code=raw["default"], unit=raw["unit"],
                     attribution=raw["attribution"], notes=tuple(raw.get("notes", ())))
