"""greenperf.bitexact: reproducible random numbers and series functions, checked in milliseconds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from greenperf import bitexact
from greenperf.bitexact import Stream


def test_raw_words_are_pinned():
    # PCG64 with an explicitly set state: these words may never change, or every data set does.
    assert [hex(int(w)) for w in Stream(42, 7).raw(3)] == [
        "0xa17dd01ad025b3aa", "0xe4d1e441ec421b49", "0x10e109909c6b2990"]


def test_same_key_same_stream_other_key_other_stream():
    assert np.array_equal(Stream(1, 2).raw(100), Stream(1, 2).raw(100))
    assert not np.array_equal(Stream(1, 2).raw(100), Stream(2, 1).raw(100))
    assert not np.array_equal(Stream(1).raw(100), Stream(1, 0).raw(100))
    big = Stream(1 << 70)  # keys of any size are folded in, not truncated
    assert not np.array_equal(big.raw(10), Stream(0).raw(10))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_key_words_are_refused(bad):
    with pytest.raises(ValueError, match="non-negative integers"):
        Stream(bad)


def test_draws_continue_the_stream():
    stream = Stream(5)
    first, second = stream.raw(3), stream.raw(3)
    np.testing.assert_array_equal(np.concatenate([first, second]), Stream(5).raw(6))


def test_uniform_is_a_multiple_of_two_to_the_minus_53_in_range():
    u = Stream(3).uniform((200, 50))
    assert u.shape == (200, 50) and u.dtype == np.float64
    assert 0.0 <= u.min() and u.max() < 1.0
    assert np.all(u * 2.0**53 == np.floor(u * 2.0**53))
    assert abs(u.mean() - 0.5) < 0.01
    scaled = Stream(3).uniform(1000, -2.0, 3.0)
    assert -2.0 <= scaled.min() and scaled.max() < 3.0


def test_below_and_integers_cover_their_range_evenly():
    draws = Stream(4).below(6, 60_000)
    counts = np.bincount(draws, minlength=6)
    assert counts.size == 6 and counts.min() > 9_500
    ints = Stream(4).integers(36, 61, 10_000)
    assert ints.min() == 36 and ints.max() == 60
    with pytest.raises(ValueError):
        Stream(4).below(0, 3)


def test_permutation_is_a_permutation_and_depends_on_the_key():
    perm = Stream(9).permutation(1000)
    assert sorted(perm.tolist()) == list(range(1000))
    assert not np.array_equal(perm, np.arange(1000))
    assert not np.array_equal(perm, Stream(10).permutation(1000))


@pytest.mark.parametrize("terms", [4, 12])
def test_normal_has_unit_variance_and_bounded_support(terms):
    z = Stream(11).normal(200_000, terms=terms)
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.01
    assert np.abs(z).max() <= math.sqrt(3.0 * terms)
    with pytest.raises(ValueError):
        Stream(11).normal(3, terms=5)


def test_series_functions_agree_with_the_platform_to_a_few_ulp():
    for x in (1e-300, 1e-5, 0.3, 1.0, 2.0, 10.0, 12345.678, 1e300):
        assert bitexact.log(x) == pytest.approx(math.log(x), rel=4e-16, abs=1e-300)
    for x in (-700.0, -20.0, -1.0, -1e-9, 0.0, 0.5, 1.0, 3.7, 100.0, 709.0):
        assert bitexact.exp(x) == pytest.approx(math.exp(x), rel=4e-16)
    for k in range(1, 400):
        assert bitexact.power(k, -1.1) == pytest.approx(k**-1.1, rel=1e-15)
    for k in range(0, 64):
        c, s = bitexact.cos_sin_turns(k, 64)
        assert c == pytest.approx(math.cos(2 * math.pi * k / 64), abs=1e-15)
        assert s == pytest.approx(math.sin(2 * math.pi * k / 64), abs=1e-15)
    assert bitexact.cos_sin_turns(5, 4) == (0.0, 1.0)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            bitexact.log(bad)
    with pytest.raises(OverflowError):
        bitexact.exp(800.0)


def test_tree_sum_adds_pairwise_in_a_fixed_order():
    values = np.array([1e16, 1.0, -1e16, 1.0, 3.0])
    # First half plus second half, repeatedly: ((v0 + v2) + (v1 + v3)) + v4 = 5, where adding
    # left to right would give 4. The pairing decides, never numpy's SIMD width.
    assert float(bitexact.tree_sum(values)) == ((1e16 + -1e16) + (1.0 + 1.0)) + 3.0 == 5.0
    rows = Stream(2).uniform((7, 5))
    np.testing.assert_allclose(bitexact.tree_sum(rows, axis=1), rows.sum(axis=1), rtol=1e-15)
    assert bitexact.tree_sum(np.zeros((0, 3))).tolist() == [0.0, 0.0, 0.0]


def test_mean_std_and_cumsum():
    values = Stream(8).normal((300, 40))
    mean, std = bitexact.mean_and_std(values)
    assert mean == pytest.approx(values.mean(), abs=1e-14)
    assert std == pytest.approx(values.std(), rel=1e-13)
    np.testing.assert_allclose(bitexact.cumsum_rows(values[:5]), np.cumsum(values[:5], axis=1),
                               rtol=1e-13, atol=1e-13)


def test_little_endian_bytes_are_the_same_for_either_byte_order():
    native = np.arange(5, dtype=np.int64)
    swapped = native.astype(">i8")
    assert bitexact.little_endian(native).tobytes() == bitexact.little_endian(swapped).tobytes()
    assert bitexact.little_endian(swapped).dtype.str == "<i8"
