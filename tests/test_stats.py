"""``greenperf.stats`` and ``greenperf.labels``: pure functions, known values, edge cases.

Every test here runs in milliseconds: no result files, no runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from greenperf import stats
from greenperf.labels import DECLARED, ESTIMATED, LABELS, MEASURED, PARTLY_ESTIMATED, combine

# -- olympic mean -------------------------------------------------------------------------------


def test_olympic_mean_drops_one_smallest_and_one_largest() -> None:
    assert stats.olympic_mean([10.0, 12.0, 11.0, 30.0, 9.0]) == pytest.approx(11.0)
    # Ties: only one copy of the extreme goes.
    assert stats.olympic_mean([1.0, 1.0, 1.0, 5.0]) == pytest.approx(1.0)
    assert stats.olympic_mean([2.0, 2.0, 2.0]) == 2.0


def test_olympic_mean_below_three_values_is_the_plain_mean() -> None:
    assert stats.olympic_mean([4.0, 6.0]) == 5.0
    assert stats.olympic_mean([7.0]) == 7.0


def test_olympic_mean_is_vectorised_over_rows() -> None:
    rows = np.array([[1.0, 2.0, 3.0, 100.0], [5.0, 5.0, 5.0, 5.0]])
    assert stats.olympic_mean(rows, axis=1).tolist() == [2.5, 5.0]
    assert stats.olympic_mean(rows.T, axis=0).tolist() == [2.5, 5.0]


def test_olympic_rule_without_aborted_runs() -> None:
    result = stats.olympic_rule([10.0, 12.0, 11.0, 30.0, 9.0], [True] * 5)
    assert result.method == "olympic_mean" and result.reason is None
    assert result.value == pytest.approx(11.0)
    assert result.dropped == (4, 3)  # fastest first, then slowest (positions)


def test_olympic_rule_one_aborted_run_is_the_slowest() -> None:
    # The aborted run's own time (2.0, fastest of all) does not count: it takes the slowest slot.
    result = stats.olympic_rule([10.0, 12.0, 11.0, 2.0, 9.0], [True, True, True, False, True])
    assert result.value == pytest.approx(11.0)
    assert result.dropped == (4, 3)


def test_olympic_rule_two_aborted_runs_mean_no_score() -> None:
    result = stats.olympic_rule([10.0, 12.0, 11.0, 5.0, 9.0], [True, False, True, False, True])
    assert result.value is None and result.method == "olympic_mean"
    assert result.reason == "2 of 5 runs aborted; the olympic rule allows at most 1"


def test_olympic_rule_with_ties_drops_the_first_of_equal_times() -> None:
    result = stats.olympic_rule([3.0, 3.0, 3.0], [True] * 3)
    assert result.value == 3.0 and result.dropped == (0, 2)


def test_olympic_rule_few_runs_and_no_runs() -> None:
    two = stats.olympic_rule([4.0, 6.0], [True, True])
    assert (two.method, two.value, two.dropped) == ("mean", 5.0, ())
    assert "too few for the olympic mean" in (two.reason or "")
    one = stats.olympic_rule([4.0], [True])
    assert one.value == 4.0
    aborted = stats.olympic_rule([4.0, 6.0], [True, False])
    assert aborted.value is None and aborted.reason == "1 of 2 runs aborted"
    assert stats.olympic_rule([], []) == stats.OlympicResult("olympic_mean", None,
                                                             reason="no runs")
    # Three runs with one aborted keep a single run.
    assert stats.olympic_rule([5.0, 1.0, 3.0], [True, False, True]).value == 5.0


# -- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_ci_is_seeded_and_brackets_the_statistic() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    lo, hi = stats.bootstrap_ci(values)
    assert stats.bootstrap_ci(values) == [lo, hi]
    assert lo < 3.5 < hi
    narrow = stats.bootstrap_ci(values, level=0.5)
    assert lo <= narrow[0] <= narrow[1] <= hi


def test_bootstrap_ci_edge_cases() -> None:
    assert stats.bootstrap_ci([1.0]) is None
    assert stats.bootstrap_ci([]) is None
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == [2.0, 2.0]
    lo, hi = stats.bootstrap_ci([1.0, 2.0, 3.0, 10.0], statistic=stats.olympic_mean,
                                resamples=500)
    assert 1.0 <= lo <= hi <= 10.0


def test_ratio_ci_known_ratio_and_determinism() -> None:
    base = [1.0, 1.02, 0.98, 1.01, 0.99]
    cand = [2.0 * v for v in base]
    lo, hi = stats.ratio_ci(base, cand)
    assert lo < 2.0 < hi and hi - lo < 0.2
    assert stats.ratio_ci(base, cand) == [lo, hi]
    assert stats.ratio_ci([3.0, 3.0], [6.0, 6.0]) == [2.0, 2.0]


def test_ratio_ci_edge_cases() -> None:
    assert stats.ratio_ci([1.0], [1.0, 2.0]) is None
    assert stats.ratio_ci([1.0, 2.0], [1.0]) is None
    # Mostly aborted candidate runs: most resampled medians are infinite, so is the interval.
    assert stats.ratio_ci([1.0, 1.1, 0.9], [math.inf, math.inf, 1.0]) is None
    # Both sides all aborted: every ratio is inf / inf, undefined.
    assert stats.ratio_ci([math.inf] * 3, [math.inf] * 3) is None


def test_median_and_ratio_follow_ieee_for_aborted_runs() -> None:
    assert stats.median([1.0, math.inf, 3.0]) == 3.0
    assert stats.median([1.0, math.inf]) == math.inf
    assert stats.ratio(2.0, 1.0) == 2.0
    assert stats.ratio(1.0, 0.0) == math.inf
    assert stats.ratio(math.inf, math.inf) is None


# -- Mann-Whitney U -----------------------------------------------------------------------------


def test_mann_whitney_min_p_is_one_over_the_arrangements() -> None:
    assert stats.mann_whitney_min_p(5, 5) == pytest.approx(1 / 252)
    assert stats.mann_whitney_min_p(4, 5) == pytest.approx(1 / 126)
    assert stats.mann_whitney_min_p(3, 3) == pytest.approx(1 / 20)
    assert stats.mann_whitney_min_p(1, 1) == 0.5


def test_mann_whitney_complete_separation_reaches_the_smallest_p() -> None:
    slow, fast = [2.0, 2.1, 2.2, 2.3, 2.4], [1.0, 1.1, 1.2, 1.3, 1.4]
    assert stats.mann_whitney_p(slow, fast) == pytest.approx(1 / 252)
    assert stats.mann_whitney_p(fast, slow, "less") == pytest.approx(1 / 252)
    assert stats.mann_whitney_p(fast, slow) == pytest.approx(1.0)


def test_mann_whitney_ties_and_degenerate_samples() -> None:
    assert stats.mann_whitney_p([1.0, 1.0, 1.0], [1.0, 1.0]) == 1.0  # all equal: no evidence
    assert stats.mann_whitney_p([], [1.0]) == 1.0
    tied = stats.mann_whitney_p([2.0, 2.0, 3.0, 3.0], [1.0, 2.0, 2.0, 1.0])
    assert 0.0 < tied < 0.2
    # Aborted runs rank as the slowest.
    assert stats.mann_whitney_p([math.inf] * 5, [1.0] * 5) == pytest.approx(1 / 252, rel=0.5)


# -- paired -------------------------------------------------------------------------------------


def test_log_ratios_need_equal_positive_finite_pairs() -> None:
    assert stats.log_ratios([1.0, 2.0], [2.0, 2.0]) == pytest.approx([math.log(2.0), 0.0])
    with pytest.raises(ValueError, match="equal lengths"):
        stats.log_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite, positive"):
        stats.log_ratios([1.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="finite, positive"):
        stats.log_ratios([1.0, 1.0], [1.0, math.inf])


def test_paired_ratio_is_the_median_pair_ratio() -> None:
    base = [1.0, 2.0, 4.0]
    assert stats.paired_ratio(base, [1.1, 2.4, 4.0]) == pytest.approx(1.1)
    assert stats.paired_ratio([3.0], [6.0]) == pytest.approx(2.0)
    assert stats.paired_ratio([], []) is None


def test_paired_ratio_ci_cancels_drift_shared_by_a_pair() -> None:
    # The machine drifts 3x across pairs, the candidate is 10% slower in each: the pair
    # bootstrap sees only the 10%.
    base = [1.0, 1.5, 2.0, 2.5, 3.0, 1.2]
    cand = [1.1 * b for b in base]
    lo, hi = stats.paired_ratio_ci(base, cand)
    assert lo == pytest.approx(1.1) and hi == pytest.approx(1.1)
    noisy = [b * f for b, f in zip(cand, [1.02, 0.99, 1.01, 0.98, 1.03, 1.0], strict=True)]
    lo, hi = stats.paired_ratio_ci(base, noisy)
    assert 1.05 < lo <= 1.1 <= hi < 1.15
    assert stats.paired_ratio_ci(base, noisy) == [lo, hi]
    assert stats.paired_ratio_ci([1.0], [2.0]) is None


def test_sign_flip_exact_p_values() -> None:
    base = [1.0] * 5
    slower = [1.1, 1.2, 1.05, 1.3, 1.15]
    assert stats.sign_flip_p(base, slower) == pytest.approx(1 / 32)
    assert stats.sign_flip_min_p(5) == pytest.approx(1 / 32)
    assert stats.sign_flip_p(base, slower, "less") == pytest.approx(1.0)
    assert stats.sign_flip_p(slower, base, "less") == pytest.approx(1 / 32)
    # One pair slower by much, four faster by little: the sum is still positive.
    mixed = [2.0, 0.99, 0.99, 0.99, 0.99]
    assert stats.sign_flip_p(base, mixed) == pytest.approx(16 / 32)


def test_sign_flip_edge_cases() -> None:
    assert stats.sign_flip_p([1.0], [2.0]) == 0.5  # n = 1: a coin flip at best
    assert stats.sign_flip_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0  # no difference at all
    # Pairs without a difference count for neither side: 3 real pairs -> 1/8.
    assert stats.sign_flip_p([1.0] * 5, [1.0, 1.0, 2.0, 2.0, 2.0]) == pytest.approx(1 / 8)
    assert stats.sign_flip_p([], []) == 1.0


def test_sign_flip_samples_patterns_beyond_the_exact_size() -> None:
    n = stats.SIGN_FLIP_EXACT_MAX + 4
    base = [1.0] * n
    cand = [1.1] * n
    p = stats.sign_flip_p(base, cand, resamples=2000)
    assert p == pytest.approx(1 / 2001)  # only the observed pattern reaches the observed sum
    assert stats.sign_flip_p(base, cand, resamples=2000) == p
    null = [1.1 if i % 2 else 1 / 1.1 for i in range(n)]
    assert 0.3 < stats.sign_flip_p(base, null, resamples=2000) < 0.7


# -- labels -------------------------------------------------------------------------------------


def test_combine_takes_the_weakest_label() -> None:
    assert combine([MEASURED, MEASURED]) == MEASURED
    assert combine([MEASURED, DECLARED]) == DECLARED
    assert combine([DECLARED, ESTIMATED, MEASURED]) == ESTIMATED
    assert combine([]) == MEASURED  # nothing weakens a figure derived from nothing
    assert combine([MEASURED, PARTLY_ESTIMATED]) == ESTIMATED  # the account's three labels
    assert combine([None]) == ESTIMATED and combine(["made up"]) == ESTIMATED
    assert {combine([a, b]) for a in LABELS for b in LABELS} <= set(LABELS)


def test_combine_keep_partly_for_windows_and_cells() -> None:
    assert combine([MEASURED, ESTIMATED], keep_partly=True) == PARTLY_ESTIMATED
    assert combine([PARTLY_ESTIMATED, ESTIMATED], keep_partly=True) == PARTLY_ESTIMATED
    assert combine([ESTIMATED, ESTIMATED], keep_partly=True) == ESTIMATED
    assert combine([MEASURED], keep_partly=True) == MEASURED
    assert combine([DECLARED, ESTIMATED], keep_partly=True) == ESTIMATED  # nothing measured
