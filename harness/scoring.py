"""Scores over runs: the MLPerf olympic mean, with median, std and a bootstrap CI."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

MIN_RUNS_OLYMPIC = 3
BOOTSTRAP_RESAMPLES = 10_000


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


def bootstrap_ci(values: Sequence[float], statistic: Any = np.mean, level: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of ``statistic``; deterministic (fixed seed)."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    stats = statistic(data[idx], axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def olympic_score(times: Sequence[float], succeeded: Sequence[bool],
                  indices: Sequence[int] | None = None, unit: str = "s") -> Score:
    """MLPerf's rule: drop the fastest run, and the slowest when at most one aborted.

    An aborted run counts as the slowest, so one aborted run is dropped in
    its place; more aborted runs than that means no score. With fewer than
    three runs there is nothing to drop, and the plain mean is reported under
    a method name that says so.
    """
    n = len(times)
    indices = list(indices) if indices is not None else list(range(1, n + 1))
    ok = [(t, i) for t, s, i in zip(times, succeeded, indices, strict=True) if s]
    n_ok = len(ok)
    n_aborted = n - n_ok
    ok_times = [t for t, _ in ok]
    median = float(np.median(ok_times)) if ok_times else None
    std = float(np.std(ok_times, ddof=1)) if n_ok > 1 else None
    if n == 0:
        return Score("olympic_mean", None, unit, 0, 0, "no runs")
    if n < MIN_RUNS_OLYMPIC:
        if n_aborted:
            return Score("mean", None, unit, n, n_ok, f"{n_aborted} of {n} runs aborted",
                         median, std)
        return Score("mean", float(np.mean(ok_times)), unit, n, n_ok,
                     f"only {n} run(s): too few for the olympic mean, plain mean reported",
                     median, std, bootstrap_ci(ok_times))
    if n_aborted > 1:
        return Score("olympic_mean", None, unit, n, n_ok,
                     f"{n_aborted} of {n} runs aborted; the olympic rule allows at most 1",
                     median, std)
    ranked = sorted(ok)
    dropped = [ranked[0][1]]
    kept = ranked[1:]
    if n_aborted == 0:
        dropped.append(kept[-1][1])
        kept = kept[:-1]
    else:
        dropped.extend(i for i, s in zip(indices, succeeded, strict=True) if not s)
    kept_times = [t for t, _ in kept]
    value = float(math.fsum(kept_times) / len(kept_times))
    return Score("olympic_mean", value, unit, n, n_ok, None, median, std,
                 bootstrap_ci(ok_times, statistic=_olympic_rows) if n_ok >= 3 else None,
                 dropped)


def _olympic_rows(matrix: np.ndarray, axis: int = 1) -> np.ndarray:
    """Olympic mean of each bootstrap resample (drop min and max of each row)."""
    rows = np.sort(matrix, axis=axis)
    return rows[:, 1:-1].mean(axis=axis)
