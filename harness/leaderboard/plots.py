"""The index's plots: time vs energy with its Pareto frontier, accuracy curves across systems,
and speed-up vs the reference. (A result page draws its own curves in the browser:
``templates/result.js``.)"""

from __future__ import annotations

import math
from collections.abc import Sequence

from greenperf.leaderboard import fmt
from greenperf.leaderboard.rows import Group, Row
from greenperf.leaderboard.svg import Bar, Point, Series, bars, lines, scatter
from markupsafe import Markup

MAX_CURVES = 10
MAX_BARS = 30


def pareto_frontier(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both x and y (both minimised), by ascending x."""
    frontier: list[Point] = []
    best_y = math.inf
    for p in sorted(points, key=lambda p: (p.x, p.y)):
        if p.y < best_y:
            frontier.append(p)
            best_y = p.y
    return frontier


def time_vs_energy(group: Group) -> Markup | None:
    """Every result with a score and an energy figure; the Pareto-optimal ones marked."""
    points = [Point(r.primary, r.energy_j,
                    f"{r.system}: {fmt.seconds(r.primary)}, {fmt.scaled(r.energy_j, 'J')} "
                    f"({r.cells['energy'].label or 'unlabelled'})", r.href)
              for r in group.rows if r.primary and r.energy_j]  # type: ignore[arg-type]
    if not points:
        return None
    frontier = pareto_frontier(points)
    on_frontier = {id(p) for p in frontier}
    for p in points:
        p.css = "s1 on-frontier" if id(p) in on_frontier else "s0"
        if id(p) in on_frontier:
            p.tip += " — on the Pareto frontier"
    return scatter(points, "Time vs energy to target (Pareto frontier marked)",
                   "time to accuracy (s)", "energy to target (J)", frontier)


def _chosen(group: Group, limit: int) -> list[Row]:
    """The best ``limit`` rows by score, plus every reference row."""
    best = [r for r in group.rows if r.primary is not None][:limit]
    extra = [r for r in group.rows if r.reference and r not in best]
    return best + extra


def accuracy_curves(group: Group) -> Markup | None:
    """The representative (median-TTA) run's eval curve of the best results."""
    rows = [r for r in _chosen(group, MAX_CURVES) if r.curve]
    if not rows:
        return None
    series = [Series(r.system + (" (reference)" if r.reference else ""), r.curve, r.href)
              for r in rows]
    target = (group.target, f"target {fmt.sig(group.target)}") if group.target is not None else None
    shown = f"; the {len(rows)} best of {len(group.rows)}" if len(group.rows) > len(rows) else ""
    return lines(series, f"{group.metric or 'metric'} vs samples{shown}", "samples seen",
                 group.metric or "metric", target, log_x=None)


def speedups(group: Group) -> Markup | None:
    rows = sorted((r for r in group.rows if r.speedup is not None), key=lambda r: -r.speedup)
    if not rows:
        return None
    kept = rows[:MAX_BARS] + [r for r in rows[MAX_BARS:] if r.reference]
    items = [Bar(r.system, r.speedup, f"{r.system}: {fmt.sig(r.speedup)}× the reference",
                 r.href, "ref" if r.reference else "") for r in kept]  # type: ignore[arg-type]
    refs = ", ".join(group.reference_systems)
    shown = f" (top {len(kept)} of {len(rows)})" if len(rows) > len(kept) else ""
    return bars(items, f"Speed-up vs reference {refs}{shown}", "speed-up (×)", marker=1.0)
