"""Numbers as people read them in the tables and on plot axes."""

from __future__ import annotations

import math

DASH = "—"


def sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, without exponents or trailing zeros;
    thousands separated."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else DASH
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    decimals = min(max(decimals, 0), 12)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def scaled(value: float, unit: str, digits: int = 3) -> str:
    """SI-prefixed: 0.0123 J -> '12.3 mJ', 45600 J -> '45.6 kJ'."""
    if value == 0 or not math.isfinite(value):
        return f"{sig(value)} {unit}"
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                (1e-6, "µ")]
    for factor, prefix in prefixes:
        if abs(value) >= factor:
            return f"{sig(value / factor, digits)} {prefix}{unit}"
    return f"{sig(value / 1e-6, digits)} µ{unit}"


def seconds(value: float | None) -> str:
    return DASH if value is None else f"{sig(value)} s"


def count(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:,.0f}" if float(value).is_integer() else sig(value)


def nbytes(value: float | None) -> str:
    return DASH if value is None else scaled(value, "B")


def short(value: float) -> str:
    """Compact axis-tick label: 1.2k, 3M, 0.05."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"
