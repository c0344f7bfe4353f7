"""Data for the MLP workload: procedural MNIST-1D, and a reader for real MNIST IDX files.

MNIST-1D follows the published recipe (greydanus/mnist1d; Greydanus, "Scaling down deep
learning", arXiv 2011.14439) with the same templates and constants, but every step runs on the
whole batch at once with numpy, and randomness comes from a local stream. The package loops
over samples in Python with scipy (about 60 s for 50k samples) and seeds the global random
state; this makes 50k in well under a second. Given the same random draws, the batched steps
reproduce the per-sample recipe (tests/test_data_mnist1d.py replays it); the draws themselves
come from a different generator, so the data follows the package's distribution, not its bits.

**The same bytes on every machine.** Random draws come from ``greenperf.bitexact.Stream`` (raw
bit-generator words; its normal draws are a 12-term Irwin-Hall sum, which stands in for the
recipe's Gaussian noise), the Gaussian kernel from its series ``exp``, and every reduction
(template whitening, the final standardisation) adds in one fixed order. Only element-wise
IEEE operations touch the arrays, so the CPU's instruction set, the thread count and the numpy
version cannot change a bit.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from greenperf import bitexact
from greenperf.errors import GreenperfError

# Constants of the published recipe (mnist1d.data.get_dataset_args).
TEMPLATE_LEN = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
CORR_NOISE_SIGMA = 2.0
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
FINAL_SEQ_LENGTH = 40
NUM_CLASSES = 10
# The recipe adds this before padding so that the signal is non-zero where the template is 0,
# which is what tells the background-noise step where the signal is.
_SIGNAL_EPS = 1e-8
# scipy.ndimage.gaussian_filter's default truncation (4 sigma) gives a 17-tap kernel at sigma 2.
_GAUSS_TRUNCATE = 4.0

# Key of this generator's random stream (with the seed), so no other data set shares its draws.
MNIST1D_STREAM = 0x1D40

# The ten 1-D digit templates of the published recipe, before whitening.
_RAW_TEMPLATES = np.asarray(
    [
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Dataset1D:
    """A classification data set of flat feature vectors with a train/test split.

    ``x_*`` are float32 arrays of shape (n, features); ``y_*`` are int64 labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.x_train, self.y_train, self.x_test, self.y_test))

    def checksum(self) -> str:
        """sha256 of the four arrays; shapes and dtypes are hashed too, so that moving the
        train/test boundary or reinterpreting the bytes changes the digest."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            array = bitexact.little_endian(array)
            digest.update(f"{array.dtype.str}{array.shape};".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


def mnist1d_templates() -> np.ndarray:
    """The ten templates, whitened per template and shifted so each starts and ends at 0."""
    rows = []
    for raw in _RAW_TEMPLATES:
        centred = raw - math.fsum(raw) / raw.size  # fsum: one correctly rounded sum
        std = math.sqrt(math.fsum(centred * centred) / raw.size)
        whitened = centred / std
        rows.append((whitened - whitened[0]) / 6.0)
    return np.stack(rows)


def linear_resample(x: np.ndarray, lengths: np.ndarray | int, num_out: int) -> np.ndarray:
    """Resample each row's first ``lengths[i]`` points linearly onto ``num_out`` points.

    Row i is treated as samples at ``linspace(0, 1, lengths[i])`` and evaluated at
    ``linspace(0, 1, num_out)``, which is what the recipe's ``interp1d`` call does.
    """
    n = x.shape[0]
    lengths = np.broadcast_to(np.asarray(lengths, dtype=np.int64), (n,))
    if num_out < 2:
        raise GreenperfError("linear_resample num_out", f"must be at least 2, got {num_out}")
    # An exact integer product, then one correctly rounded division: one fixed rounding on
    # every machine (numpy's linspace rounds in an order that has changed between versions).
    positions = (np.arange(num_out)[None, :] * (lengths[:, None] - 1)) / (num_out - 1)
    left = np.floor(positions).astype(np.int64)
    # The last output point lands exactly on the last input point; clip so its right
    # neighbour stays in bounds (its weight is 0 there).
    left = np.minimum(left, lengths[:, None] - 1)
    right = np.minimum(left + 1, x.shape[1] - 1)
    frac = positions - left
    x_left = np.take_along_axis(x, left, axis=1)
    x_right = np.take_along_axis(x, right, axis=1)
    return x_left * (1.0 - frac) + x_right * frac


def gaussian_filter_rows(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooth each row, as scipy.ndimage.gaussian_filter does for 1-D input.

    The border rule is scipy's default 'reflect' (the edge sample is repeated), which is numpy's
    'symmetric' padding; the kernel is truncated at 4 sigma and normalised to sum 1.
    """
    radius = int(_GAUSS_TRUNCATE * sigma + 0.5)
    weights = [bitexact.exp(-0.5 * (tap / sigma) * (tap / sigma))
               for tap in range(-radius, radius + 1)]
    total = math.fsum(weights)
    kernel = [weight / total for weight in weights]
    padded = np.pad(x, ((0, 0), (radius, radius)), mode="symmetric")
    width = x.shape[1]
    out = np.zeros_like(x, dtype=np.float64)
    # A few shifted, weighted slices beat np.convolve per row by far for thousands of rows.
    for offset, weight in enumerate(kernel):
        out += weight * padded[:, offset : offset + width]
    return out


def _ramp(length: int) -> np.ndarray:
    """``length`` evenly spaced points from -0.5 to 0.5 (what the recipe's linspace gives)."""
    return np.arange(length) / (length - 1) - 0.5


def _generate_signals(labels: np.ndarray, stream: bitexact.Stream) -> np.ndarray:
    """Apply the recipe's random transforms to the template of each label; float64 (n, 40)."""
    n = labels.shape[0]
    dilated_len = TEMPLATE_LEN + PADDING[1]

    # Pad: a random number of zeros after the template, then stretch back to a fixed length.
    pad = stream.integers(PADDING[0], PADDING[1] + 1, n)
    padded = np.zeros((n, dilated_len))
    padded[:, :TEMPLATE_LEN] = mnist1d_templates()[labels] + _SIGNAL_EPS
    signal = linear_resample(padded, TEMPLATE_LEN + pad, dilated_len)

    signal *= 1.0 + SCALE_COEFF * (stream.uniform(n)[:, None] - 0.5)

    # Translate: a circular shift to the right by k in [0, MAX_TRANSLATION).
    shift = stream.integers(0, MAX_TRANSLATION, n)
    source = (np.arange(dilated_len)[None, :] - shift[:, None]) % dilated_len
    signal = np.take_along_axis(signal, source, axis=1)

    # Correlated noise only where there is no signal, then iid noise everywhere.
    background = gaussian_filter_rows(
        CORR_NOISE_SCALE * stream.normal((n, dilated_len)), CORR_NOISE_SIGMA
    )
    signal = np.where(signal != 0.0, signal, background)
    signal += IID_NOISE_SCALE * stream.normal((n, dilated_len))

    # Shear: subtract a random linear ramp.
    shear = SHEAR_SCALE * (stream.uniform(n)[:, None] - 0.5)
    signal -= shear * _ramp(dilated_len)[None, :]

    return linear_resample(signal, dilated_len, FINAL_SEQ_LENGTH)


def make_mnist1d(n_train: int, n_test: int, seed: int) -> Dataset1D:
    """Generate MNIST-1D: ``n_train + n_test`` signals of 40 points in 10 balanced classes.

    Labels are balanced over the whole set (class counts differ by at most one) and shuffled.
    As in the recipe, the signals are standardised with the mean and std of the whole set.
    The same arguments give bit-identical arrays on every machine.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise GreenperfError(name, f"must be a non-negative integer, got {value!r}")
    n_train, n_test = int(n_train), int(n_test)
    if n_train + n_test < 2:
        raise GreenperfError("n_train + n_test", "needs at least 2 samples to standardise")

    stream = bitexact.Stream(int(seed), MNIST1D_STREAM)
    total = n_train + n_test
    labels = stream.permutation(total) % NUM_CLASSES
    signals = _generate_signals(labels, stream)
    mean, std = bitexact.mean_and_std(signals)
    signals = (signals - mean) / std

    x = signals.astype(np.float32)
    y = labels.astype(np.int64)
    return Dataset1D(
        x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:]
    )


# --- Real MNIST in IDX format -------------------------------------------------------------------

_IDX_UBYTE = 0x08
MNIST_SIDE = 28
_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx_file(folder: Path, stem: str) -> Path:
    # Copies in the wild use the official dash names, a dotted variant ("train-images.idx3-ubyte")
    # and may be gzipped.
    dotted = stem.replace("-idx", ".idx")
    candidates = [folder / name for base in (stem, dotted) for name in (base, base + ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    raise GreenperfError(str(folder / stem), "missing MNIST file (also looked for .gz)")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise GreenperfError(str(path), f"cannot read: {err}") from err


def read_idx_ubyte(path: Path, ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes with ``ndim`` dimensions, checking its header."""
    data = _read_bytes(path)
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise GreenperfError(str(path), f"truncated header: {len(data)} bytes, need {header_len}")
    magic = data[:4]
    expected = bytes([0, 0, _IDX_UBYTE, ndim])
    if magic != expected:
        raise GreenperfError(
            str(path), f"bad magic number 0x{magic.hex()}, expected 0x{expected.hex()}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected_len = header_len + int(np.prod(dims, dtype=np.int64))
    if len(data) < expected_len:
        raise GreenperfError(
            str(path), f"truncated data: {len(data)} bytes, header {dims} needs {expected_len}"
        )
    if len(data) > expected_len:
        raise GreenperfError(
            str(path),
            f"{len(data) - expected_len} unexpected bytes after the data for dimensions {dims}",
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def _read_split(folder: Path, images_stem: str, labels_stem: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _find_idx_file(folder, images_stem)
    labels_path = _find_idx_file(folder, labels_stem)
    images = read_idx_ubyte(images_path, ndim=3)
    labels = read_idx_ubyte(labels_path, ndim=1)
    if images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        raise GreenperfError(
            str(images_path),
            f"images are {images.shape[1]}x{images.shape[2]}, expected {MNIST_SIDE}x{MNIST_SIDE}",
        )
    if images.shape[0] != labels.shape[0]:
        raise GreenperfError(
            str(labels_path),
            f"{labels.shape[0]} labels for {images.shape[0]} images in {images_path.name}",
        )
    if images.shape[0] == 0:
        raise GreenperfError(str(images_path), "contains no images")
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise GreenperfError(
            str(labels_path), f"label {int(labels.max())} out of range 0..{NUM_CLASSES - 1}"
        )
    x = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return x, labels.astype(np.int64)


def load_mnist_idx(folder: Path) -> Dataset1D:
    """Read a local copy of MNIST (the four IDX files, optionally .gz) as flat 784-pixel vectors
    in [0, 1]. Raises GreenperfError naming the file for anything missing or malformed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GreenperfError(str(folder), "MNIST folder does not exist")
    x_train, y_train = _read_split(
        folder, _MNIST_FILES["train_images"], _MNIST_FILES["train_labels"]
    )
    x_test, y_test = _read_split(folder, _MNIST_FILES["test_images"], _MNIST_FILES["test_labels"])
    return Dataset1D(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
