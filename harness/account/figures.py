"""Labelled figures: every number of the account says how it was obtained.

A figure is ``{"value": 123.4, "unit": "J", "label": "measured", "source": "..."}``; one that
cannot be computed has ``value`` None and a ``reason``. A figure derived from others takes the
weakest of their labels (``greenperf.labels.combine``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from greenperf.labels import DECLARED, ESTIMATED, LABELS, MEASURED, combine

__all__ = ["DECLARED", "ESTIMATED", "JOULES_PER_KWH", "LABELS", "MEASURED", "derive", "figure",
           "missing", "sum_figures"]

JOULES_PER_KWH = 3.6e6


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


def derive(unit: str, source: str, compute: Callable[..., float], *inputs: dict[str, Any],
           label: str | None = None, detail: str | None = None) -> dict[str, Any]:
    """A figure computed from other figures: missing if any input is, labelled by the weakest."""
    combined = label or combine(f["label"] for f in inputs)
    for fig in inputs:
        if fig["value"] is None:
            return missing(unit, combined, fig.get("reason", "an input is not available"), source)
    return figure(compute(*(f["value"] for f in inputs)), unit, combined, source, detail=detail)


def sum_figures(figs: list[dict[str, Any]], unit: str, source: str) -> dict[str, Any]:
    if not figs:
        return missing(unit, MEASURED, "no phases", source)
    return derive(unit, source, lambda *v: math.fsum(v), *figs)
