"""Every statistic greenperf reports, as pure functions of plain numbers.

No I/O and no knowledge of result files: ``scoring``, ``compare`` and ``references`` pick the
numbers out of results and call these. Randomised procedures take a ``seed`` and draw from one
``numpy.random.default_rng(seed)`` stream in a documented order, so the same inputs always give
the same interval (a CI gate must not flip on a re-run of the same files).

- **olympic mean**: MLPerf's score over runs (``olympic_mean``, and ``olympic_rule`` with the
  rules for aborted runs);
- **bootstrap**: percentile intervals of a statistic of one sample (``bootstrap_ci``) and of a
  ratio of statistics of two independent samples (``ratio_ci``);
- **Mann-Whitney U**, one-sided, with the smallest p-value the sample sizes allow
  (``mann_whitney_p``, ``mann_whitney_min_p``);
- **paired**: for A/B runs interleaved on one machine, the median of per-pair log ratios with a
  pair bootstrap (``paired_ratio``, ``paired_ratio_ci``) and a one-sided sign-flip permutation
  test (``sign_flip_p``, ``sign_flip_min_p``).

Aborted runs enter the two-sample functions as ``inf`` (infinitely slow, the rank MLPerf gives
them); the paired functions need finite, positive values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
MIN_RUNS_OLYMPIC = 3
# Up to this many pairs the sign-flip test enumerates all 2^n sign patterns (65,536 rows of
# 16); beyond, it samples patterns, which is as good as exact at that size.
SIGN_FLIP_EXACT_MAX = 16

Alternative = Literal["greater", "less"]
# A statistic reduces an array along ``axis`` (numpy's convention: np.mean, np.median, ...).
Statistic = Callable[..., Any]


# -- the olympic mean ---------------------------------------------------------------------------


def olympic_mean(values: Any, axis: int = -1) -> np.ndarray | float:
    """Mean without the smallest and the largest value along ``axis``, from 3 values on.

    Below 3 values there is nothing to drop and the plain mean is returned. Vectorised, so it
    also serves as a bootstrap statistic (one olympic mean per resample row).
    """
    data = np.asarray(values, dtype=float)
    n = data.shape[axis]
    if n < MIN_RUNS_OLYMPIC:
        return data.mean(axis=axis)
    ordered = np.sort(data, axis=axis)
    return np.take(ordered, range(1, n - 1), axis=axis).mean(axis=axis)


@dataclass(frozen=True)
class OlympicResult:
    """The olympic score of a set of runs, and which runs it left out (positions, 0-based)."""

    method: str  # "olympic_mean", or "mean" below 3 runs
    value: float | None
    dropped: tuple[int, ...] = ()
    reason: str | None = None


def olympic_rule(times: Sequence[float], succeeded: Sequence[bool]) -> OlympicResult:
    """MLPerf's rule: drop the fastest run, and the slowest when at most one aborted.

    An aborted run counts as the slowest, so one aborted run is dropped in its place; more
    aborted runs than that means no score. With fewer than three runs there is nothing to
    drop: the plain mean of the runs, or no score if any aborted. ``dropped`` lists the
    fastest run first, then the slowest (or the aborted run).
    """
    n = len(times)
    ok = [(float(t), pos) for pos, (t, s) in enumerate(zip(times, succeeded, strict=True)) if s]
    n_aborted = n - len(ok)
    if n == 0:
        return OlympicResult("olympic_mean", None, reason="no runs")
    if n < MIN_RUNS_OLYMPIC:
        if n_aborted:
            return OlympicResult("mean", None, reason=f"{n_aborted} of {n} runs aborted")
        return OlympicResult("mean", float(np.mean([t for t, _ in ok])),
                             reason=f"only {n} run(s): too few for the olympic mean, "
                                    "plain mean reported")
    if n_aborted > 1:
        return OlympicResult("olympic_mean", None,
                             reason=f"{n_aborted} of {n} runs aborted; the olympic rule allows "
                                    "at most 1")
    ranked = sorted(ok)
    dropped = [ranked[0][1]]
    kept = ranked[1:]
    if n_aborted == 0:
        dropped.append(kept[-1][1])
        kept = kept[:-1]
    else:
        dropped.extend(pos for pos, s in enumerate(succeeded) if not s)
    value = math.fsum(t for t, _ in kept) / len(kept)
    return OlympicResult("olympic_mean", value, tuple(dropped))


# -- bootstrap ----------------------------------------------------------------------------------


def _resampled(rng: np.random.Generator, data: np.ndarray, resamples: int,
               statistic: Statistic) -> np.ndarray:
    """``statistic`` of ``resamples`` resamples (with replacement) of ``data``, one per row."""
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    return statistic(data[idx], axis=-1)


def _tails(level: float) -> list[float]:
    alpha = (1.0 - level) / 2.0
    return [alpha, 1.0 - alpha]


def bootstrap_ci(values: Sequence[float], statistic: Statistic = np.mean, level: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of ``statistic`` of one sample; None below 2 values."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    stats = _resampled(np.random.default_rng(seed), data, resamples, statistic)
    lo, hi = np.quantile(stats, _tails(level))
    return [float(lo), float(hi)]


def ratio_ci(baseline: Sequence[float], candidate: Sequence[float],
             statistic: Statistic = np.median, level: float = 0.95,
             resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of statistic(candidate) / statistic(baseline).

    Each sample is resampled independently, the baseline's resamples drawn first. Infinite
    values (aborted runs) are allowed: resamples whose ratio is undefined (inf / inf) are
    left out, and there is no interval when more than half are, when an end of the interval
    is infinite, or when a sample has fewer than 2 values.
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if base.size < 2 or cand.size < 2:
        return None
    rng = np.random.default_rng(seed)
    with np.errstate(divide="ignore", invalid="ignore"):  # aborted runs are infinite
        base_stats = _resampled(rng, base, resamples, statistic)
        cand_stats = _resampled(rng, cand, resamples, statistic)
        ratios = cand_stats / base_stats
    defined = ratios[~np.isnan(ratios)]
    if defined.size < resamples * 0.5:
        return None
    with np.errstate(invalid="ignore"):  # inf - inf between two infinite quantiles
        lo, hi = np.quantile(defined, _tails(level))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return [float(lo), float(hi)]


def median(values: Sequence[float]) -> float:
    """The median, where infinite values (aborted runs) may make it ``inf`` or ``nan``."""
    with np.errstate(invalid="ignore"):  # inf - inf when the middle pair is (x, inf)
        return float(np.median(np.asarray(values, dtype=float)))


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` in IEEE arithmetic (x / 0 = inf); None when undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.float64(numerator) / np.float64(denominator)
    return None if math.isnan(value) else float(value)


# -- Mann-Whitney U -----------------------------------------------------------------------------


def mann_whitney_min_p(n_x: int, n_y: int) -> float:
    """The smallest one-sided exact Mann-Whitney p-value samples of these sizes allow.

    It is reached by a complete separation of the two samples; when it is not below alpha,
    no outcome could be significant and a test would be theatre.
    """
    return 1.0 / math.comb(n_x + n_y, n_x)


def mann_whitney_p(x: Sequence[float], y: Sequence[float],
                   alternative: Alternative = "greater") -> float:
    """One-sided Mann-Whitney U p-value that ``x`` is stochastically greater (or less) than ``y``.

    Exact distribution for small samples without ties (scipy's choice). When every value of
    both samples is the same there is no evidence either way: p = 1.
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    pooled = np.concatenate([a, b])
    if a.size == 0 or b.size == 0 or np.all(pooled == pooled[0]):
        return 1.0
    import scipy.stats  # imported here: the pytest plugin loads compare (and so this) always

    return float(scipy.stats.mannwhitneyu(a, b, alternative=alternative).pvalue)


# -- paired samples -----------------------------------------------------------------------------


def log_ratios(baseline: Sequence[float], candidate: Sequence[float]) -> np.ndarray:
    """log(candidate_i / baseline_i) per pair; pairs must be finite and positive.

    Logs make a ratio symmetric (twice as slow and twice as fast are +-log 2), so a median
    or a sign test of them treats slow-downs and speed-ups alike.
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if base.shape != cand.shape or base.ndim != 1:
        raise ValueError(f"paired samples need equal lengths, got {base.size} and {cand.size}")
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(cand))
            and np.all(base > 0) and np.all(cand > 0)):
        raise ValueError("paired samples need finite, positive values")
    return np.log(cand / base)


def paired_ratio(baseline: Sequence[float], candidate: Sequence[float]) -> float | None:
    """exp(median of per-pair log ratios): the typical candidate / baseline ratio of a pair."""
    logs = log_ratios(baseline, candidate)
    return float(np.exp(np.median(logs))) if logs.size else None


def paired_ratio_ci(baseline: Sequence[float], candidate: Sequence[float], level: float = 0.95,
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of ``paired_ratio``: pairs are resampled whole.

    Resampling pairs (not each side) keeps what the pairing bought: machine drift that moves
    both runs of a pair cancels in their ratio. None below 2 pairs.
    """
    logs = log_ratios(baseline, candidate)
    if logs.size < 2:
        return None
    lo, hi = np.exp(np.quantile(
        _resampled(np.random.default_rng(seed), logs, resamples, np.median), _tails(level)))
    return [float(lo), float(hi)]


def sign_flip_min_p(n_pairs: int) -> float:
    """The smallest one-sided p-value of an exact sign-flip test over ``n_pairs`` pairs."""
    return 0.5 ** n_pairs


def sign_flip_p(baseline: Sequence[float], candidate: Sequence[float],
                alternative: Alternative = "greater", resamples: int = BOOTSTRAP_RESAMPLES,
                seed: int = 0) -> float:
    """One-sided sign-flip permutation p-value of "candidate is greater (less) than baseline".

    The statistic is the sum of per-pair log ratios. Under "no difference" each pair's sign is
    a coin flip, so p is the share of sign patterns whose sum is at least as extreme as the
    observed one: all 2^n patterns up to ``SIGN_FLIP_EXACT_MAX`` pairs, else ``resamples``
    seeded random patterns (with the observed pattern counted, so p is never 0). Pairs with
    no difference add nothing either way; all such pairs give p = 1.
    """
    logs = log_ratios(baseline, candidate)
    if logs.size == 0:
        return 1.0
    if alternative == "less":
        logs = -logs
    n = logs.size
    if n <= SIGN_FLIP_EXACT_MAX:
        # Row k of the patterns is the binary expansion of k, as signs +1 / -1.
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
        sums = (1 - 2 * bits) @ logs
        extra = 0
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, n))
        sums = signs @ logs
        extra = 1
    observed = logs.sum()
    # A pattern that only flips zero differences reaches the observed sum up to rounding.
    tolerance = 1e-9 * max(1.0, float(np.abs(logs).sum()))
    hits = int(np.count_nonzero(sums >= observed - tolerance))
    return (hits + extra) / (sums.size + extra)
