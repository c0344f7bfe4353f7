"""One metric, baseline against candidate: the comparison model and the verdict rule.

The numbers come from ``greenperf.stats``: ratio of medians with its bootstrap interval, and the
one-sided Mann-Whitney U test; what they mean for a CI gate is the package's doc.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from greenperf import stats
from greenperf.errors import UsageError

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.01

REGRESSED = "regressed"
IMPROVED = "improved"
UNCHANGED = "unchanged"
TOO_FEW_RUNS = "too few runs"
NO_DATA = "no data"

LOWER = "lower"
HIGHER = "higher"


def parse_threshold(text: str) -> float:
    """``5%`` or ``0.05`` -> 0.05; a bare number of 1 or more is ambiguous and refused."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError as exc:
        raise UsageError(f"--threshold {text}", "expected a percentage like 5% or a "
                                                "fraction like 0.05") from exc
    if not raw.endswith("%") and value >= 1:
        raise UsageError(f"--threshold {text}", "ambiguous: write 5% or 0.05")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--threshold {text}", "must be a non-negative percentage")
    return value


@dataclass
class MetricComparison:
    """One metric of one phase or scenario, baseline against candidate."""

    workload: str
    scale: str
    kind: str
    section: str
    metric: str
    unit: str
    better: str
    baseline: list[float]
    candidate: list[float]
    baseline_median: float | None = None
    candidate_median: float | None = None
    ratio: float | None = None
    ratio_ci95: list[float] | None = None
    worse_factor: float | None = None
    p_value: float | None = None
    min_p_value: float | None = None
    verdict: str = NO_DATA
    reason: str = ""

    @property
    def change(self) -> float | None:
        """Relative change of the metric itself (+0.12 = 12% larger)."""
        if self.ratio is None or not math.isfinite(self.ratio):
            return None
        return self.ratio - 1.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["baseline"] = [_json_number(v) for v in self.baseline]
        out["candidate"] = [_json_number(v) for v in self.candidate]
        for key in ("baseline_median", "candidate_median", "ratio", "worse_factor"):
            out[key] = _json_number(out[key])
        out["change"] = self.change
        return out


@dataclass
class Comparison:
    """Every metric of every matched result; ``regressed`` decides the exit code."""

    threshold: float
    alpha: float
    metrics: list[MetricComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    matched: list[tuple[str, str]] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.verdict == REGRESSED]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "alpha": self.alpha, "regressed": self.regressed,
                "matched": [{"baseline": b, "candidate": c} for b, c in self.matched],
                "metrics": [m.to_dict() for m in self.metrics], "notes": self.notes}


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else "-inf"


def worse_p_value(baseline: Sequence[float], candidate: Sequence[float], better: str) -> float:
    """One-sided Mann-Whitney U p-value of "the candidate is worse" (larger when lower is
    better, smaller when higher is)."""
    return stats.mann_whitney_p(candidate, baseline, "greater" if better == LOWER else "less")


def compare_samples(metric: MetricComparison, threshold: float, alpha: float) -> MetricComparison:
    """Fill in medians, ratio, interval, p-value and verdict of ``metric``."""
    base, cand = metric.baseline, metric.candidate
    if not base or not cand:
        side = "baseline" if not base else "candidate"
        metric.verdict, metric.reason = NO_DATA, f"no {side} values"
        return metric
    metric.baseline_median = stats.median(base)  # aborted runs are infinite
    metric.candidate_median = stats.median(cand)
    metric.ratio = stats.ratio(metric.candidate_median, metric.baseline_median)
    if metric.ratio is not None:
        worse = metric.ratio if metric.better == LOWER else _inverse(metric.ratio)
        metric.worse_factor = worse
    metric.ratio_ci95 = stats.ratio_ci(base, cand)
    metric.min_p_value = stats.mann_whitney_min_p(len(base), len(cand))
    if metric.min_p_value >= alpha:
        metric.verdict = TOO_FEW_RUNS
        metric.reason = (f"{len(base)} vs {len(cand)} runs: even a complete separation gives "
                         f"p = {metric.min_p_value:.3g}, not below alpha {alpha:g}; "
                         "no significance test possible")
        return metric
    metric.p_value = worse_p_value(base, cand, metric.better)
    better_p = worse_p_value(cand, base, metric.better)
    worse = metric.worse_factor
    limit = 1.0 + threshold
    if worse is not None and worse > limit and metric.p_value < alpha:
        metric.verdict = REGRESSED
        metric.reason = (f"worse by {factor_text(worse)} (threshold {percent_text(threshold)}), "
                         f"p = {metric.p_value:.3g} < {alpha:g}")
    elif worse is not None and _inverse(worse) > limit and better_p < alpha:
        metric.verdict = IMPROVED
        metric.reason = f"better by {factor_text(_inverse(worse))}, p = {better_p:.3g}"
    else:
        metric.verdict = UNCHANGED
        if metric.p_value >= alpha and better_p >= alpha:
            metric.reason = f"difference not significant (p = {metric.p_value:.3g})"
        else:
            metric.reason = f"significant but within the {percent_text(threshold)} threshold"
    return metric


def percent_text(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _inverse(value: float) -> float:
    if value == 0:
        return math.inf
    return 1.0 / value if math.isfinite(value) else 0.0


def factor_text(factor: float) -> str:
    if not math.isfinite(factor):
        return "an unbounded factor (runs aborted)"
    return f"{(factor - 1.0):.1%}"
