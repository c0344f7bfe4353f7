import math

import pytest
from greenperf.scoring import bootstrap_ci, olympic_score


def test_olympic_mean_drops_fastest_and_slowest():
    score = olympic_score([10.0, 12.0, 11.0, 30.0, 9.0], [True] * 5)
    assert score.method == "olympic_mean"
    assert score.value == pytest.approx((10.0 + 11.0 + 12.0) / 3)
    assert sorted(score.dropped_runs) == [4, 5]
    assert score.median == 11.0
    lo, hi = score.ci95
    assert 9.0 <= lo <= hi <= 30.0


def test_one_aborted_run_counts_as_the_dropped_slowest():
    score = olympic_score([10.0, 12.0, 11.0, 2.0, 9.0], [True, True, True, False, True])
    # fastest successful (9.0, run 5) and the aborted run 4 are dropped
    assert score.value == pytest.approx((10.0 + 11.0 + 12.0) / 3)
    assert sorted(score.dropped_runs) == [4, 5]


def test_two_aborted_runs_mean_no_score_with_reason():
    score = olympic_score([10.0, 12.0, 11.0, 5.0, 9.0], [True, False, True, False, True])
    assert score.value is None
    assert "2 of 5 runs aborted" in score.reason


def test_fewer_than_three_runs_report_a_plain_mean_and_say_so():
    score = olympic_score([4.0, 6.0], [True, True])
    assert score.method == "mean" and score.value == 5.0
    assert "too few" in score.reason


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert bootstrap_ci(values) == bootstrap_ci(values)
    lo, hi = bootstrap_ci(values)
    assert lo < 3.5 < hi
    assert bootstrap_ci([1.0]) is None
    assert all(math.isfinite(v) for v in (lo, hi))
