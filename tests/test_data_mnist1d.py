"""MNIST-1D generator (suites/mlp/data.py) and the MNIST IDX reader."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from greenperf.bitexact import Stream
from greenperf.errors import GreenperfError
from greenperf.suites.mlp import data as m1d

# --- Building blocks against independent references -------------------------------------------


def test_templates_are_the_ten_whitened_digits_starting_and_ending_at_zero():
    templates = m1d.mnist1d_templates()
    assert templates.shape == (10, m1d.TEMPLATE_LEN)
    np.testing.assert_array_equal(templates[:, 0], 0.0)
    np.testing.assert_allclose(templates[:, -1], 0.0, atol=1e-12)
    # Whitening then dividing by 6 leaves every template with std 1/6; all ten differ.
    np.testing.assert_allclose(templates.std(axis=1), 1 / 6)
    assert len({row.tobytes() for row in templates}) == 10


def test_linear_resample_matches_np_interp_for_each_row_length():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 20))
    lengths = np.array([2, 5, 12, 13, 19, 20])
    out = m1d.linear_resample(x, lengths, 33)
    for row, length in enumerate(lengths):
        expected = np.interp(np.linspace(0, 1, 33), np.linspace(0, 1, length), x[row, :length])
        np.testing.assert_allclose(out[row], expected, rtol=0, atol=1e-12)


def _reference_gaussian(row: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    padded = np.pad(row, radius, mode="symmetric")
    return np.convolve(padded, taps / taps.sum(), mode="valid")


def test_gaussian_filter_matches_a_direct_convolution_with_reflected_borders():
    x = np.random.default_rng(1).normal(size=(4, 72))
    out = m1d.gaussian_filter_rows(x, 2.0)
    for row in range(4):
        np.testing.assert_allclose(out[row], _reference_gaussian(x[row], 2.0), atol=1e-12)


def test_helpers_agree_with_scipy_which_the_published_recipe_uses():
    ndimage = pytest.importorskip("scipy.ndimage")
    interpolate = pytest.importorskip("scipy.interpolate")
    x = np.random.default_rng(2).normal(size=(3, 72))
    for row in range(3):
        np.testing.assert_allclose(
            m1d.gaussian_filter_rows(x[row : row + 1], 2.0)[0],
            ndimage.gaussian_filter(x[row], 2),
            atol=1e-12,
        )
        resampled = interpolate.interp1d(np.linspace(0, 1, 72), x[row])(np.linspace(0, 1, 40))
        np.testing.assert_allclose(m1d.linear_resample(x[row : row + 1], 72, 40)[0], resampled)


def test_vectorised_generator_equals_the_recipe_applied_one_sample_at_a_time():
    """Replays the published per-sample loop (pad, dilate, scale, translate, noise, shear,
    resample) with the same random draws and compares with the batched implementation."""
    n_train, n_test, seed = 150, 50, 11
    stream = Stream(seed, m1d.MNIST1D_STREAM)
    n = n_train + n_test
    labels = stream.permutation(n) % 10
    pad = stream.integers(36, 61, n)
    scale = stream.uniform(n)
    shift = stream.integers(0, 48, n)
    corr = 0.25 * stream.normal((n, 72))
    iid = 0.02 * stream.normal((n, 72))
    shear = stream.uniform(n)

    templates = m1d.mnist1d_templates()
    rows = []
    for i in range(n):
        x = np.concatenate([templates[labels[i]] + 1e-8, np.zeros(pad[i])])
        x = np.interp(np.linspace(0, 1, 72), np.linspace(0, 1, len(x)), x)
        x = x * (1 + 0.4 * (scale[i] - 0.5))
        x = np.roll(x, shift[i])
        x = np.where(x != 0, x, _reference_gaussian(corr[i], 2.0)) + iid[i]
        x = x - 0.75 * (shear[i] - 0.5) * np.linspace(-0.5, 0.5, 72)
        rows.append(np.interp(np.linspace(0, 1, 40), np.linspace(0, 1, 72), x))
    expected = np.stack(rows)
    expected = ((expected - expected.mean()) / expected.std()).astype(np.float32)

    data = m1d.make_mnist1d(n_train, n_test, seed)
    np.testing.assert_allclose(np.concatenate([data.x_train, data.x_test]), expected, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([data.y_train, data.y_test]), labels)


# --- The data set --------------------------------------------------------------------------------


def test_shapes_dtypes_balance_and_standardisation():
    data = m1d.make_mnist1d(900, 300, seed=3)
    assert data.x_train.shape == (900, 40) and data.x_test.shape == (300, 40)
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.num_features == 40
    counts = np.bincount(np.concatenate([data.y_train, data.y_test]), minlength=10)
    np.testing.assert_array_equal(counts, 120)
    assert 0.8 * 90 <= np.bincount(data.y_train, minlength=10).min()  # shuffled, not sorted
    everything = np.concatenate([data.x_train, data.x_test])
    assert abs(float(everything.mean())) < 1e-5
    assert abs(float(everything.std()) - 1.0) < 1e-5
    assert data.nbytes == 1200 * 40 * 4 + 1200 * 8


def test_same_seed_is_bit_identical_and_other_seed_differs():
    a = m1d.make_mnist1d(500, 100, seed=5)
    b = m1d.make_mnist1d(500, 100, seed=5)
    c = m1d.make_mnist1d(500, 100, seed=6)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.checksum() == b.checksum()
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.checksum() != c.checksum()


def test_generation_leaves_global_random_state_alone():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    m1d.make_mnist1d(50, 10, seed=1)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_checksum_detects_a_moved_split_and_a_flipped_label():
    a = m1d.make_mnist1d(400, 100, seed=8)
    moved = m1d.make_mnist1d(401, 99, seed=8)  # same bytes overall, split one sample later
    assert (
        np.concatenate([a.x_train, a.x_test]).tobytes()
        == np.concatenate([moved.x_train, moved.x_test]).tobytes()
    )
    assert a.checksum() != moved.checksum()
    y_train = a.y_train.copy()
    y_train[0] = (y_train[0] + 1) % 10
    flipped = m1d.Dataset1D(a.x_train, y_train, a.x_test, a.y_test)
    assert flipped.checksum() != a.checksum()


@pytest.mark.parametrize(
    "n_train, n_test, seed",
    [(-1, 10, 0), (10, -5, 0), (1, 0, 0), (2.5, 10, 0), (True, 10, 0), (10, 10, -1)],
)
def test_bad_sizes_and_seeds_are_rejected(n_train, n_test, seed):
    with pytest.raises(GreenperfError):
        m1d.make_mnist1d(n_train, n_test, seed=seed)


def test_numpy_integer_sizes_are_accepted():
    data = m1d.make_mnist1d(np.int64(30), np.int32(10), seed=np.int64(2))
    assert data.x_train.shape == (30, 40) and data.x_test.shape == (10, 40)


def test_linear_model_stays_far_below_the_mlp_target_on_40k():
    """Evidence that the task needs a nonlinear model: logistic regression trained on 40k
    samples lands near the published ~32%, far from the MLP workload's 88% target, but clearly
    above chance, so the labels are in the data."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = m1d.make_mnist1d(40_000, 10_000, seed=42)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model = torch.nn.Linear(40, 10)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        for batch in torch.randperm(len(x), generator=generator).split(512):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        predicted = model(torch.from_numpy(data.x_test)).argmax(1).numpy()
    accuracy = float((predicted == data.y_test).mean())
    assert 0.2 < accuracy < 0.5, accuracy


# --- MNIST IDX reader -------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    magic = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return magic + dims + array.astype(np.uint8).tobytes()


def _write_mnist(
    folder: Path,
    n_train: int = 20,
    n_test: int = 10,
    gz: bool = False,
    dotted: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        name = name.replace("-idx", ".idx") if dotted else name
        payload = _idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
    return arrays


def test_idx_reader_returns_flat_pixels_in_unit_range(tmp_path):
    arrays = _write_mnist(tmp_path)
    data = m1d.load_mnist_idx(tmp_path)
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (10, 784)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_allclose(
        data.x_train, arrays["train-images-idx3-ubyte"].reshape(20, 784) / 255.0, rtol=1e-6
    )
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0


@pytest.mark.parametrize("gz, dotted", [(True, False), (False, True), (True, True)])
def test_idx_reader_accepts_gzip_and_dotted_names(tmp_path, gz, dotted):
    arrays = _write_mnist(tmp_path, gz=gz, dotted=dotted)
    data = m1d.load_mnist_idx(tmp_path)
    np.testing.assert_array_equal(data.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(
        (data.x_test * 255).round().astype(np.uint8).reshape(10, 28, 28),
        arrays["t10k-images-idx3-ubyte"],
    )


def _expect_error(folder: Path, *fragments: str) -> None:
    with pytest.raises(GreenperfError) as info:
        m1d.load_mnist_idx(folder)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_idx_missing_folder_and_missing_file(tmp_path):
    _expect_error(tmp_path / "nowhere", "nowhere", "does not exist")
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    _expect_error(tmp_path, "t10k-labels-idx1-ubyte", "missing")


def test_idx_bad_magic_number(tmp_path):
    arrays = _write_mnist(tmp_path)
    images = arrays["train-images-idx3-ubyte"]
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images, b"\x00\x00\x08\x01"))
    _expect_error(tmp_path, "train-images-idx3-ubyte", "magic")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images, b"\x00\x00\x0d\x03"))
    _expect_error(tmp_path, "train-images-idx3-ubyte", "magic")


def test_idx_truncated_and_oversized_data(tmp_path):
    _write_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    payload = path.read_bytes()
    path.write_bytes(payload[:-100])
    _expect_error(tmp_path, "t10k-images-idx3-ubyte", "truncated data")
    path.write_bytes(payload[:10])
    _expect_error(tmp_path, "t10k-images-idx3-ubyte", "truncated header")
    path.write_bytes(payload + b"\x00" * 7)
    _expect_error(tmp_path, "t10k-images-idx3-ubyte", "7 unexpected bytes")


def test_idx_label_count_mismatch(tmp_path):
    arrays = _write_mnist(tmp_path)
    labels = arrays["train-labels-idx1-ubyte"][:-3]
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    _expect_error(tmp_path, "train-labels-idx1-ubyte", "17 labels for 20 images")


def test_idx_wrong_image_size_and_bad_labels(tmp_path):
    arrays = _write_mnist(tmp_path)
    small = np.zeros((20, 20, 20))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(small))
    _expect_error(tmp_path, "train-images-idx3-ubyte", "20x20")
    _write_mnist(tmp_path)
    labels = arrays["t10k-labels-idx1-ubyte"].copy()
    labels[3] = 12
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    _expect_error(tmp_path, "t10k-labels-idx1-ubyte", "label 12")


def test_idx_corrupt_gzip(tmp_path):
    _write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:15])
    _expect_error(tmp_path, "train-labels-idx1-ubyte.gz", "cannot read")
