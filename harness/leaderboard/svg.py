"""Small inline-SVG charts: scatter, lines and horizontal bars, with no plotting library.

Every piece of text that reaches the SVG (titles, series names, tooltips, links) goes through
``markupsafe.escape``; the returned ``Markup`` holds only markup built here around escaped text.
Data points are elements of class ``point`` so that a test (or a reader's tool) can count them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from greenperf.leaderboard.fmt import short
from markupsafe import Markup, escape

WIDTH = 640
PLOT_HEIGHT = 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 20, 30, 46
LEGEND_ROW, LEGEND_ITEM = 18, 200
PALETTE_SIZE = 10
MAX_LABEL = 40


@dataclass
class Point:
    x: float
    y: float
    tip: str
    href: str | None = None
    css: str = ""


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    href: str | None = None


@dataclass
class Bar:
    label: str
    value: float
    tip: str
    href: str | None = None
    css: str = ""


@dataclass(frozen=True)
class Axis:
    lo: float
    hi: float
    log: bool

    def frac(self, value: float) -> float:
        if self.log:
            value = max(value, self.lo)
            return (math.log10(value) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo))
        return (value - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = round(math.log10(self.lo)), round(math.log10(self.hi))
            steps = (1, 2, 5) if last - first <= 2 else (1,)
            return [m * 10.0 ** e for e in range(first, last + 1) for m in steps
                    if self.lo <= m * 10.0 ** e <= self.hi * (1 + 1e-9)]
        step = _nice_step((self.hi - self.lo) / 5)
        start = math.ceil(self.lo / step - 1e-9)
        return [i * step for i in range(start, start + 12) if i * step <= self.hi + step * 1e-9]


def _nice_step(raw: float) -> float:
    exponent = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * 10.0 ** exponent:
            return m * 10.0 ** exponent
    return 10.0 ** (exponent + 1)


def make_axis(values: Sequence[float], log: bool | None = None, zero: bool = False) -> Axis:
    """An axis spanning ``values`` with round ends; ``log=None`` picks log for > 2 decades."""
    lo, hi = min(values), max(values)
    if log is None:
        log = lo > 0 and hi / lo > 100
    if log:
        return Axis(10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi)), True)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step((hi - lo) / 5)
    return Axis(math.floor(lo / step) * step, math.ceil(hi / step) * step, False)


def _n(value: float) -> str:
    return f"{value:.1f}"


def _clip(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


class _Canvas:
    """Plot area geometry plus the accumulated SVG fragments."""

    def __init__(self, title: str, x_axis: Axis, y_axis: Axis, x_label: str, y_label: str,
                 legend: Sequence[str] = ()) -> None:
        self.x_axis, self.y_axis = x_axis, y_axis
        self.left, self.right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
        self.top, self.bottom = MARGIN_TOP, MARGIN_TOP + PLOT_HEIGHT
        per_row = max(1, (WIDTH - MARGIN_LEFT) // LEGEND_ITEM)
        legend_rows = math.ceil(len(legend) / per_row)
        self.height = self.bottom + MARGIN_BOTTOM + legend_rows * LEGEND_ROW
        self.parts: list[str] = [
            f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} '
            f'{self.height}" role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>",
            f'<text class="chart-title" x="{self.left}" y="18">{escape(title)}</text>',
        ]
        self._axes(x_label, y_label)
        for i, name in enumerate(legend):
            x = self.left + (i % per_row) * LEGEND_ITEM
            y = self.bottom + MARGIN_BOTTOM + (i // per_row) * LEGEND_ROW + 4
            self.parts.append(
                f'<g class="legend"><rect class="swatch s{i % PALETTE_SIZE}" x="{x}" '
                f'y="{y - 9}" width="12" height="4"/><text x="{x + 16}" y="{y}">'
                f"{escape(_clip(name))}</text></g>")

    def px(self, x: float) -> float:
        return self.left + self.x_axis.frac(x) * (self.right - self.left)

    def py(self, y: float) -> float:
        return self.bottom - self.y_axis.frac(y) * (self.bottom - self.top)

    def coords(self, points: Sequence[tuple[float, float]]) -> list[tuple[str, str]]:
        """Pixel coordinates as text; the linear case inlined, as pages draw many points."""
        if self.x_axis.log or self.y_axis.log:
            return [(_n(self.px(x)), _n(self.py(y))) for x, y in points]
        xa, ya = self.x_axis, self.y_axis
        sx = (self.right - self.left) / (xa.hi - xa.lo)
        sy = (self.bottom - self.top) / (ya.hi - ya.lo)
        left, bottom, xlo, ylo = self.left, self.bottom, xa.lo, ya.lo
        return [(f"{left + (x - xlo) * sx:.1f}", f"{bottom - (y - ylo) * sy:.1f}")
                for x, y in points]

    def _axes(self, x_label: str, y_label: str) -> None:
        out = self.parts
        for tick in self.x_axis.ticks():
            x = _n(self.px(tick))
            out.append(f'<line class="grid" x1="{x}" y1="{self.top}" x2="{x}" '
                       f'y2="{self.bottom}"/><text class="tick" x="{x}" y="{self.bottom + 16}" '
                       f'text-anchor="middle">{escape(short(tick))}</text>')
        for tick in self.y_axis.ticks():
            y = _n(self.py(tick))
            out.append(f'<line class="grid" x1="{self.left}" y1="{y}" x2="{self.right}" '
                       f'y2="{y}"/><text class="tick" x="{self.left - 6}" y="{y}" '
                       f'text-anchor="end" dominant-baseline="middle">{escape(short(tick))}'
                       "</text>")
        out.append(f'<rect class="frame" x="{self.left}" y="{self.top}" '
                   f'width="{self.right - self.left}" height="{self.bottom - self.top}"/>')
        out.append(f'<text class="axis-label" x="{(self.left + self.right) / 2}" '
                   f'y="{self.bottom + 36}" text-anchor="middle">{escape(x_label)}</text>')
        out.append(f'<text class="axis-label" transform="translate(14 '
                   f'{(self.top + self.bottom) / 2}) rotate(-90)" text-anchor="middle">'
                   f"{escape(y_label)}</text>")

    def point(self, x: float, y: float, tip: str, css: str, href: str | None = None) -> None:
        circle = (f'<circle class="point {css}" cx="{_n(self.px(x))}" cy="{_n(self.py(y))}" '
                  f'r="4"><title>{escape(tip)}</title></circle>')
        self.parts.append(f'<a href="{escape(href)}">{circle}</a>' if href else circle)

    def polyline(self, points: Sequence[tuple[float, float]], css: str) -> None:
        coords = " ".join(f"{x},{y}" for x, y in self.coords(points))
        self.parts.append(f'<polyline class="{css}" points="{coords}"/>')

    def series(self, series: Series, css: str) -> None:
        """A series as one group titled with its name: a line through point markers."""
        coords = self.coords(series.points)
        out = [f'<g class="series {css}"><title>{escape(series.name)}</title>']
        if len(coords) > 1:
            out.append(f'<polyline class="line" points="{" ".join(f"{x},{y}" for x, y in coords)}"'
                       "/>")
        out.extend(f'<circle class="point" cx="{x}" cy="{y}" r="3"/>' for x, y in coords)
        out.append("</g>")
        group = "".join(out)
        self.parts.append(f'<a href="{escape(series.href)}">{group}</a>' if series.href else group)

    def hline(self, y: float, label: str) -> None:
        py = _n(self.py(y))
        self.parts.append(f'<line class="target" x1="{self.left}" y1="{py}" x2="{self.right}" '
                          f'y2="{py}"/><text class="target-label" x="{self.right - 4}" '
                          f'y="{float(py) - 4:.1f}" text-anchor="end">{escape(label)}</text>')

    def markup(self) -> Markup:
        return Markup("".join(self.parts) + "</svg>")


def scatter(points: Sequence[Point], title: str, x_label: str, y_label: str,
            frontier: Sequence[Point] = (), log: bool | None = None) -> Markup:
    """Points, with an optional frontier drawn through the points it names."""
    canvas = _Canvas(title, make_axis([p.x for p in points], log),
                     make_axis([p.y for p in points], log), x_label, y_label)
    if len(frontier) > 1:
        canvas.polyline([(p.x, p.y) for p in frontier], "frontier")
    for p in points:
        canvas.point(p.x, p.y, p.tip, p.css or "s0", p.href)
    return canvas.markup()


def lines(series: Sequence[Series], title: str, x_label: str, y_label: str,
          target: tuple[float, str] | None = None, log_x: bool | None = False) -> Markup:
    """One polyline with point markers per series; an optional horizontal target line."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points] + ([target[0]] if target else [])
    canvas = _Canvas(title, make_axis(xs, log_x), make_axis(ys, False), x_label, y_label,
                     legend=[s.name for s in series] if len(series) > 1 else ())
    if target is not None:
        canvas.hline(*target)
    for i, s in enumerate(series):
        canvas.series(s, f"s{i % PALETTE_SIZE}")
    return canvas.markup()


def bars(items: Sequence[Bar], title: str, x_label: str, marker: float | None = None) -> Markup:
    """Horizontal bars from zero, one row per item; ``marker`` draws a vertical rule (e.g. 1x)."""
    row, label_w = 22, 180
    left, right = label_w + 8, WIDTH - MARGIN_RIGHT
    height = MARGIN_TOP + row * len(items) + 40
    axis = make_axis([b.value for b in items] + ([marker] if marker is not None else []),
                     log=False, zero=True)

    def px(v: float) -> float:
        return left + axis.frac(v) * (right - left)

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} '
             f'{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text class="chart-title" x="8" y="18">{escape(title)}</text>']
    bottom = MARGIN_TOP + row * len(items)
    for tick in axis.ticks():
        x = _n(px(tick))
        parts.append(f'<line class="grid" x1="{x}" y1="{MARGIN_TOP}" x2="{x}" y2="{bottom}"/>'
                     f'<text class="tick" x="{x}" y="{bottom + 14}" text-anchor="middle">'
                     f"{escape(short(tick))}</text>")
    for i, b in enumerate(items):
        y = MARGIN_TOP + i * row
        x0, x1 = px(0.0), px(b.value)
        rect = (f'<rect class="bar point {b.css}" x="{_n(min(x0, x1))}" y="{y + 3}" '
                f'width="{_n(abs(x1 - x0))}" height="{row - 6}"><title>{escape(b.tip)}</title>'
                "</rect>")
        parts.append(f'<text class="bar-label" x="{label_w}" y="{y + row / 2}" text-anchor="end" '
                     f'dominant-baseline="middle">{escape(_clip(b.label))}</text>')
        parts.append(f'<a href="{escape(b.href)}">{rect}</a>' if b.href else rect)
        parts.append(f'<text class="bar-value" x="{_n(max(x0, x1) + 4)}" y="{y + row / 2}" '
                     f'dominant-baseline="middle">{escape(short(b.value))}</text>')
    if marker is not None:
        x = _n(px(marker))
        parts.append(f'<line class="target" x1="{x}" y1="{MARGIN_TOP - 4}" x2="{x}" '
                     f'y2="{bottom}"/>')
    parts.append(f'<text class="axis-label" x="{(left + right) / 2}" y="{bottom + 32}" '
                 f'text-anchor="middle">{escape(x_label)}</text></svg>')
    return Markup("".join(parts))
