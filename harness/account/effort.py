"""Declared human effort: engineer-hours for porting and tuning, and their cost."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from greenperf.account.figures import derive, figure, missing
from greenperf.labels import DECLARED


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
