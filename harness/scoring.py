"""Scores over runs: the MLPerf olympic mean, with median, std and a bootstrap CI.

The arithmetic is ``greenperf.stats``; this module picks the runs' times and shapes the ``Score``
that a result file records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from greenperf.stats import MIN_RUNS_OLYMPIC, bootstrap_ci, olympic_mean, olympic_rule

__all__ = ["MIN_RUNS_OLYMPIC", "Score", "bootstrap_ci", "olympic_score"]


@dataclass
class Score:
    method: str
    value: float | None
    unit: str
    n_runs: int
    n_success: int
    reason: str | None
    median: float | None = None
    std: float | None = None
    ci95: list[float] | None = None
    dropped_runs: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def olympic_score(times: Sequence[float], succeeded: Sequence[bool],
                  indices: Sequence[int] | None = None, unit: str = "s") -> Score:
    """The olympic score of runs (``greenperf.stats.olympic_rule``), with its spread.

    ``indices`` name the runs in ``dropped_runs`` (default 1..n). The interval bootstraps the
    statistic the score used over the successful runs: the olympic mean from 3 of them on,
    the plain mean when there were too few runs for the olympic rule.
    """
    n = len(times)
    indices = list(indices) if indices is not None else list(range(1, n + 1))
    rule = olympic_rule(times, succeeded)
    ok_times = [t for t, s in zip(times, succeeded, strict=True) if s]
    n_ok = len(ok_times)
    median = float(np.median(ok_times)) if ok_times else None
    std = float(np.std(ok_times, ddof=1)) if n_ok > 1 else None
    ci = None
    if rule.value is not None:
        ci = (bootstrap_ci(ok_times) if rule.method == "mean" else
              bootstrap_ci(ok_times, statistic=olympic_mean) if n_ok >= MIN_RUNS_OLYMPIC
              else None)
    return Score(rule.method, rule.value, unit, n, n_ok, rule.reason, median, std, ci,
                 [indices[pos] for pos in rule.dropped])
