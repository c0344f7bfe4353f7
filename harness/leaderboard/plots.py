"""The leaderboard's plots: time vs energy with its Pareto frontier, accuracy curves across
systems, speed-up vs the reference, and a result's own eval curves and power traces."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup

from harness.leaderboard import fmt
from harness.leaderboard.records import Phase, Run
from harness.leaderboard.rows import Group, Row
from harness.leaderboard.svg import Bar, Point, Series, bars, lines, scatter

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


def _run_name(run: Run) -> str:
    return f"run {run.index} (seed {run.seed})"


def eval_curves(phase: Phase) -> tuple[Markup | None, Markup | None]:
    """Metric vs time and metric vs samples, one series per run."""
    runs = [r for r in phase.runs if r.curve]
    if not runs:
        return None, None
    target = (phase.target, f"target {fmt.sig(phase.target)}")
    by_time = [Series(_run_name(r), [(s, m) for _, s, m in r.curve]) for r in runs]
    by_samples = [Series(_run_name(r), [(float(n), m) for n, _, m in r.curve]) for r in runs]
    return (lines(by_time, f"{phase.metric} vs time ({phase.name})", "seconds since run_start",
                  phase.metric, target),
            lines(by_samples, f"{phase.metric} vs samples ({phase.name})", "samples seen",
                  phase.metric, target))


def power_traces(runs: Sequence[Run], title: str) -> Markup | None:
    """Power over time of every meter reading that recorded a trace."""
    series = [Series(f"run {r.index} {t.component} ({t.label})", t.points)
              for r in runs if r.energy for t in r.energy.traces if t.points]
    if not series:
        return None
    return lines(series, title, "seconds into the run window", "power (W)")


def energy_per_run(runs: Sequence[Run], title: str) -> Markup | None:
    items = [Bar(_run_name(r), r.energy.total_joules,
                 f"{_run_name(r)}: {fmt.scaled(r.energy.total_joules, 'J')} "
                 f"({r.energy.label or 'unlabelled'})")
             for r in runs if r.energy and r.energy.total_joules is not None]
    if not items:
        return None
    return bars(items, title, "energy (J)")
