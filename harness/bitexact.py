"""Random numbers and arithmetic that give the same bits on every machine, for procedural data.

Two machines that compare themselves must train on identical data, so a data generator may not
depend on the CPU's instruction set, the number of threads, the numpy or torch version, or the
device. What varies between machines, and is therefore avoided here:

* **distribution methods** of ``numpy.random.Generator`` (``random``, ``integers``,
  ``standard_normal``, ``permutation``): numpy promises stable *bit generators*, not stable
  distributions, across versions;
* **transcendental functions** (``exp``, ``log``, ``pow``, ``sin``, ``cos``) in numpy and torch:
  they are dispatched to SIMD code (SVML on AVX-512, Sleef in torch) that differs in the last bits
  from the scalar code, and the platform's libm differs from vendor to vendor;
* **float reductions** (``sum``, ``mean``, ``std``, ``matmul``, ``cumsum`` on some builds): the
  order of additions follows the vector width and the thread count;
* **fused or library kernels** (``grid_sample``, ``interpolate``, BLAS): FMA contraction and
  blocking change the rounding.

What stays: raw output of a bit generator with an explicitly set state (PCG64's algorithm is
frozen by numpy's compatibility policy), integer arithmetic, and single IEEE-754 operations
(+, -, *, /, sqrt, floor, min, max, comparisons), which are correctly rounded on every CPU,
applied element-wise in a fixed order. Generators build everything from those, in float64 (so
numpy's type promotion, which changed between 1.x and 2.x for float32, never decides a result),
and quantise what they store (uint8 images, int64 tokens, or float32 features).

The scalar functions below (``exp``, ``log``, ``power``, ``cos_sin_turns``) are series evaluated
with Python floats, whose every operation is one correctly rounded IEEE-754 double operation.
They are accurate to a few ulp and, more to the point, give the same bits everywhere. They are
meant for tables (a few thousand values), not for per-pixel work.
"""

from __future__ import annotations

import math

import numpy as np

_MASK64 = (1 << 64) - 1
_LN2 = 0.6931471805599453  # nearest double to ln 2
# ln 2 split as fdlibm does: the high part has trailing zero bits, so k * _LN2_HI is exact.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_PI = 3.141592653589793  # nearest double to pi
_SQRT_HALF = 0.7071067811865476
_U53 = 2.0**-53


def _splitmix64(value: int) -> int:
    """One SplitMix64 step on a Python int: a well-mixed 64-bit output for any 64-bit input."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _key_hash(key: tuple[int, ...]) -> int:
    acc = 0x6A09E667F3BCC908  # an arbitrary non-zero start
    for word in key:
        if isinstance(word, bool) or not isinstance(word, (int, np.integer)) or word < 0:
            raise ValueError(f"stream key words must be non-negative integers, got {word!r}")
        word = int(word)
        while True:  # any size of int: fold it in 64 bits at a time
            acc = _splitmix64(acc ^ (word & _MASK64))
            word >>= 64
            if not word:
                break
    return acc


class Stream:
    """A reproducible stream of random numbers keyed by a tuple of non-negative integers.

    The state of numpy's PCG64 bit generator is set directly from the key (bypassing
    SeedSequence and every distribution method), and all draws are computed here from its raw
    64-bit output with exact integer or single-rounding float operations.
    """

    def __init__(self, *key: int) -> None:
        if not key:
            raise ValueError("a stream needs at least one key word")
        state = _key_hash(key)
        increment = _splitmix64(state ^ 0xDA3E39CB94B95BDB)
        self._bits = np.random.PCG64()
        self._bits.state = {
            "bit_generator": "PCG64",
            "state": {"state": (state << 64) | _splitmix64(state),
                      "inc": ((increment << 64) | _splitmix64(increment)) | 1},
            "has_uint32": 0,
            "uinteger": 0,
        }

    def raw(self, count: int) -> np.ndarray:
        """``count`` raw 64-bit words (uint64)."""
        return self._bits.random_raw(int(count)).astype(np.uint64, copy=False)

    def uniform(self, shape: int | tuple[int, ...], low: float = 0.0,
                high: float = 1.0) -> np.ndarray:
        """Float64 uniform on [low, high): ``k * 2**-53`` scaled, with k the top 53 bits."""
        shape = _shape(shape)
        unit = (self.raw(_size(shape)) >> np.uint64(11)).astype(np.float64) * _U53
        unit = unit.reshape(shape)
        if low == 0.0 and high == 1.0:
            return unit
        return unit * (float(high) - float(low)) + float(low)

    def below(self, bound: int, shape: int | tuple[int, ...]) -> np.ndarray:
        """Int64 in [0, bound): the high 32 bits times ``bound``, shifted down (bound <= 2**32).

        The bias of this multiply-shift method is below bound / 2**32, far under anything a
        data set of millions of samples can show.
        """
        bound = int(bound)
        if not 1 <= bound <= 1 << 32:
            raise ValueError(f"bound must be in [1, 2**32], got {bound}")
        shape = _shape(shape)
        high = self.raw(_size(shape)) >> np.uint64(32)
        return ((high * np.uint64(bound)) >> np.uint64(32)).astype(np.int64).reshape(shape)

    def integers(self, low: int, high: int, shape: int | tuple[int, ...]) -> np.ndarray:
        """Int64 uniform on [low, high)."""
        return self.below(int(high) - int(low), shape) + int(low)

    def permutation(self, count: int) -> np.ndarray:
        """A uniformly random permutation of ``range(count)`` (int64).

        Sorting by random 64-bit keys with a stable sort has exactly one answer, whatever sort
        algorithm numpy picks for the CPU (a tie, at odds of ~count**2 / 2**65, keeps index order).
        """
        return np.argsort(self.raw(count), kind="stable").astype(np.int64)

    def normal(self, shape: int | tuple[int, ...], terms: int = 12) -> np.ndarray:
        """Approximately standard normal float64: an Irwin-Hall sum of uniforms, standardised.

        Each uniform is a 16-bit field of the raw words (four to a word) at its cell centre, so
        the sum is an exact integer and the result is computed exactly. With the default 12
        terms the shape is close to normal (support +-6, kurtosis 2.9); 4 terms (one word per
        number) suit noise whose exact shape does not matter.
        """
        if terms not in (4, 8, 12, 16):
            raise ValueError(f"terms must be 4, 8, 12 or 16, got {terms}")
        shape = _shape(shape)
        size = _size(shape)
        words = self.raw(terms // 4 * size).astype("<u8", copy=False)
        fields = words.view("<u2").reshape(size, terms)
        total = fields[:, 0].astype(np.int64)
        for column in range(1, terms):  # integers: exact in any order
            total += fields[:, column]
        # Sum of `terms` cell-centred uniforms = (total + terms / 2) / 2**16; mean terms / 2,
        # variance terms / 12.
        centred = (total.astype(np.float64) + terms / 2.0) * 2.0**-16 - terms / 2.0
        return (centred * math.sqrt(12.0 / terms)).reshape(shape)


def _shape(shape: int | tuple[int, ...]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


def little_endian(array: np.ndarray) -> np.ndarray:
    """``array`` as a C-ordered little-endian array, so its bytes hash alike on every machine."""
    array = np.ascontiguousarray(array)
    return array.astype(array.dtype.newbyteorder("<"), copy=False)


# --- Exact reductions -------------------------------------------------------------------------


def tree_sum(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sum along ``axis`` by pairwise halving with element-wise adds: one fixed order everywhere.

    numpy's own ``sum`` adds in an order that follows the SIMD width of the CPU it runs on.
    """
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    if values.shape[0] == 0:
        return np.zeros(values.shape[1:])
    while values.shape[0] > 1:
        half = values.shape[0] // 2
        paired = values[:half] + values[half : 2 * half]
        values = paired if values.shape[0] % 2 == 0 else np.concatenate(
            [paired, values[2 * half :]])
    return values[0]


def mean_and_std(values: np.ndarray) -> tuple[float, float]:
    """Population mean and standard deviation of all elements, in a fixed order."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    count = flat.size
    mean = float(tree_sum(flat)) / count
    centred = flat - mean
    return mean, math.sqrt(float(tree_sum(centred * centred)) / count)


def cumsum_rows(values: np.ndarray) -> np.ndarray:
    """Cumulative sum along the last axis, column after column (a fixed sequential order)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    running = np.zeros(values.shape[:-1])
    for column in range(values.shape[-1]):
        running = running + values[..., column]
        out[..., column] = running
    return out


# --- Scalar functions by series ---------------------------------------------------------------


def log(x: float) -> float:
    """Natural logarithm of a positive finite float, by the atanh series."""
    x = float(x)
    if not (x > 0.0 and math.isfinite(x)):
        raise ValueError(f"log needs a positive finite number, got {x!r}")
    mantissa, exponent = math.frexp(x)  # exact: x = mantissa * 2**exponent, 0.5 <= m < 1
    if mantissa < _SQRT_HALF:
        mantissa *= 2.0
        exponent -= 1
    s = (mantissa - 1.0) / (mantissa + 1.0)  # |s| <= 0.172
    s2 = s * s
    term, total, n = s, s, 1
    while True:
        n += 2
        term *= s2
        step = term / n
        if total + step == total:
            break
        total += step
    return (exponent * _LN2_HI + 2.0 * total) + exponent * _LN2_LO


def exp(x: float) -> float:
    """e**x for a finite float, by range reduction to |r| <= ln2/2 and the Taylor series."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"exp needs a finite number, got {x!r}")
    if x > 709.0:
        raise OverflowError(f"exp({x}) overflows a double")
    k = round(x / _LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    term, total, n = 1.0, 1.0, 0
    while True:
        n += 1
        term = term * r / n
        if total + term == total:
            break
        total += term
    return math.ldexp(total, k)


def power(base: float, exponent: float) -> float:
    """``base ** exponent`` for a positive base, as exp(exponent * log(base))."""
    return exp(float(exponent) * log(base))


def cos_sin_turns(numerator: int, denominator: int) -> tuple[float, float]:
    """(cos, sin) of the angle ``2 * pi * numerator / denominator``.

    The angle is reduced to a quadrant with exact integer arithmetic, then both Taylor series
    run on [0, pi/2).
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    remainder = int(numerator) % int(denominator)
    quadrant, within = divmod(4 * remainder, int(denominator))
    theta = (_PI / 2.0) * (within / denominator)
    t2 = theta * theta
    cos_total, sin_total = 1.0, theta
    cos_term, sin_term, n = 1.0, theta, 0
    while True:
        n += 2
        cos_term = -cos_term * t2 / ((n - 1) * n)
        sin_term = -sin_term * t2 / (n * (n + 1))
        if cos_total + cos_term == cos_total and sin_total + sin_term == sin_total:
            break
        cos_total += cos_term
        sin_total += sin_term
    c, s = cos_total, sin_total
    for _ in range(quadrant):  # a quarter turn maps (c, s) to (-s, c) exactly
        c, s = -s, c
    return c, s


def cos_sin_table(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of ``k / steps`` turns for k = 0 .. steps - 1, as float64 arrays."""
    pairs = [cos_sin_turns(k, steps) for k in range(int(steps))]
    return (np.array([c for c, _ in pairs], dtype=np.float64),
            np.array([s for _, s in pairs], dtype=np.float64))
