"""Any JSON value as table rows (path, value, label, note), and labelled figures out of it.

The system description, software versions and the sustainability account are shown through
this one generic reader, so an unexpected shape in a stranger's file shows as text and never
breaks a page. A figure is the account's ``{"value", "unit", "label", "source", ...}`` object
(``greenperf.account``); its label (measured / estimated / declared) travels to the row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_TEXT = 500


@dataclass(frozen=True)
class Figure:
    value: float | None
    unit: str
    label: str | None
    note: str | None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _clip(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


def scalar_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return _clip(str(value))


def read_figure(node: Any) -> Figure | None:
    """A labelled figure object, or None if ``node`` is not one."""
    if not isinstance(node, dict) or "value" not in node or "unit" not in node:
        return None
    value = node["value"]
    if value is not None and not _is_number(value):
        return None
    label = node.get("label") if isinstance(node.get("label"), str) else None
    notes = [node[k] for k in ("detail", "reason", "source") if isinstance(node.get(k), str)]
    return Figure(None if value is None else float(value), scalar_text(node["unit"]), label,
                  _clip("; ".join(notes)) if notes else None)


def dig(node: Any, *keys: str | int) -> Any:
    """``node[k1][k2]...`` or None when any step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and -len(node) <= key < len(node) else None
        else:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return None
    return node
