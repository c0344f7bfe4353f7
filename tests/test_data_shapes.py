"""Shapes-10 generator (suites/resnet/data.py) and the CIFAR-10 binary reader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from greenperf.errors import GreenperfError
from greenperf.suites.resnet import data as shapes


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def batch():
    torch.set_num_threads(1)
    # More than one chunk, and a partial last chunk.
    return shapes.make_shapes(1100, seed=3)


# --- Sprites and placement ------------------------------------------------------------------------


def test_sprites_are_distinct_masks_with_an_empty_border():
    sprites = shapes.render_sprites()
    assert sprites.shape == (11, shapes.SPRITE_PX, shapes.SPRITE_PX)
    assert sprites.dtype == np.float64
    assert sprites.min() >= 0.0 and sprites.max() <= 1.0
    # Placement clamps far-away sample points onto the sprite border, which must be empty.
    border = np.concatenate(
        [
            sprites[:, :2].reshape(11, -1),
            sprites[:, -2:].reshape(11, -1),
            sprites[:, :, :2].reshape(11, -1),
            sprites[:, :, -2:].reshape(11, -1),
        ],
        axis=1,
    )
    assert np.abs(border).max() == 0.0
    areas = sprites.sum(axis=(1, 2))
    assert (areas > 0.05 * shapes.SPRITE_PX**2).all()
    flat = sprites.reshape(11, -1)
    differences = np.abs(flat[:, None] - flat[None]).mean(-1)
    off_diagonal = differences[~np.eye(11, dtype=bool)]
    assert off_diagonal.min() > 0.01
    # Anti-aliased: edges have partial coverage.
    assert ((sprites > 0.05) & (sprites < 0.95)).any(axis=(1, 2)).all()


def test_disk_sprite_area_matches_the_unit_disk():
    disk = shapes.render_sprites()[shapes.CLASS_NAMES.index("disk")]
    unit_area_px = (shapes.SPRITE_PX / (2 * shapes.SHAPE_EXTENT)) ** 2
    assert float(disk.sum()) == pytest.approx(math.pi * unit_area_px, rel=0.01)


def _place(sprite_index: int, matrix: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """Place one sprite in one image as the generator does; returns (32, 32) coverage."""
    layers = shapes._LAYERS
    matrices = np.zeros((1, layers, 2, 2))
    matrices[0, :] = matrix
    centres = np.broadcast_to(np.array(centre, dtype=np.float64), (1, layers, 2)).copy()
    sprites = np.full((1, layers), sprite_index, dtype=np.int64)
    tables = shapes._bilinear_tables(shapes.render_sprites())
    return shapes._sample_layers(tables, matrices, centres, sprites)[0, 0]


def _similarity(radius: float, angle: float) -> np.ndarray:
    s = 1.0 / (radius * shapes.SHAPE_EXTENT)
    c, n = math.cos(angle), math.sin(angle)
    return np.array([[s * c, s * n], [-s * n, s * c]])


@pytest.mark.parametrize("name", shapes.CLASS_NAMES)
def test_placed_shape_matches_its_signed_distance_function(name):
    """The affine placement and the bilinear sprite lookup put each shape where its SDF says:
    compare with the SDF evaluated directly at 4x4 points per output pixel."""
    radius, angle, centre = 10.0, 0.7, (15.0, 17.5)
    placed = _place(shapes.CLASS_NAMES.index(name), _similarity(radius, angle), centre)

    sub = (np.arange(32 * 4, dtype=np.float64) + 0.5) / 4
    ys, xs = np.meshgrid(sub, sub, indexing="ij")
    dx, dy = xs - centre[0], ys - centre[1]
    # Shape coordinates = R(-angle) (pixel - centre) / radius, as in the generator.
    local = np.stack(
        (
            (math.cos(angle) * dx + math.sin(angle) * dy) / radius,
            (-math.sin(angle) * dx + math.cos(angle) * dy) / radius,
        ),
        axis=-1,
    )
    inside = (shapes._class_sdf(name, local) <= 0).astype(np.float64)
    expected = inside.reshape(32, 4, 32, 4).mean(axis=(1, 3))

    assert float(np.abs(placed - expected).mean()) < 0.03
    assert float(placed.sum()) == pytest.approx(float(expected.sum()), rel=0.05)


def test_placed_line_covers_length_times_width():
    length, width, angle = 20.0, 1.5, 0.3
    scale_x = 2.0 / (length * shapes.LINE_EXTENT)
    scale_y = shapes.LINE_SPRITE_WIDTH_PX / (width * shapes.LINE_HALF_HEIGHT_PX)
    c, s = math.cos(angle), math.sin(angle)
    matrix = np.array([[scale_x * c, scale_x * s], [-scale_y * s, scale_y * c]])
    placed = _place(shapes.LINE_SPRITE_INDEX, matrix, (16.0, 16.0))
    assert float(placed.sum()) == pytest.approx(length * width, rel=0.08)
    assert float(placed.max()) > 0.9


def test_far_away_samples_read_empty_space_not_the_neighbouring_sprite():
    # A tiny square at the image corner: most of the image maps far outside the sprite.
    placed = _place(shapes.CLASS_NAMES.index("square"), _similarity(2.0, 0.0), (1.0, 1.0))
    assert float(placed[:4, :4].sum()) > 5.0
    assert float(np.abs(placed[6:, :]).max()) == 0.0
    assert float(np.abs(placed[:, 6:]).max()) == 0.0


def test_rotation_table_is_exact_at_the_quarter_turns():
    cos, sin = shapes.cos_sin_table(shapes.ROTATION_STEPS)
    quarter = shapes.ROTATION_STEPS // 4
    assert [(cos[k * quarter], sin[k * quarter]) for k in range(4)] == [
        (1.0, 0.0), (-0.0, 1.0), (-1.0, -0.0), (0.0, -1.0)]
    np.testing.assert_allclose(cos, np.cos(2 * np.pi * np.arange(shapes.ROTATION_STEPS)
                                           / shapes.ROTATION_STEPS), atol=1e-15)


# --- The data set ---------------------------------------------------------------------------------


def test_shapes_dtypes_and_balanced_labels(batch):
    images, labels = batch
    assert images.shape == (1100, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (1100,) and labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == [110] * 10
    assert not torch.equal(labels, labels.sort().values)  # shuffled, not in class order
    # Images vary, and clipping to uint8 saturates few pixels.
    assert float(images.float().std()) > 40.0
    saturated = ((images == 0) | (images == 255)).float().mean()
    assert saturated < 0.05


def test_same_seed_gives_identical_tensors_and_other_seed_differs(batch):
    images, labels = batch
    again_images, again_labels = shapes.make_shapes(1100, seed=3)
    assert torch.equal(images, again_images) and torch.equal(labels, again_labels)
    assert shapes.checksum(images, labels) == shapes.checksum(again_images, again_labels)
    other_images, other_labels = shapes.make_shapes(1100, seed=4)
    assert not torch.equal(images, other_images)
    assert shapes.checksum(images, labels) != shapes.checksum(other_images, other_labels)


def test_generation_leaves_global_torch_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    shapes.make_shapes(16, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_checksum_detects_one_changed_pixel_and_label(batch):
    images, labels = batch
    reference = shapes.checksum(images, labels)
    changed = images.clone()
    changed[7, 1, 3, 4] ^= 1
    assert shapes.checksum(changed, labels) != reference
    relabelled = labels.clone()
    relabelled[0] = (relabelled[0] + 1) % 10
    assert shapes.checksum(images, relabelled) != reference
    assert shapes.checksum(images.reshape(1100, 3, 1024), labels) != reference


def test_colour_carries_no_label_information(batch):
    """One-way ANOVA of each image's mean colour across the classes: the between-class variance
    is no larger than sampling noise predicts (F near 1; p = 0.001 is at about F = 3.1)."""
    images, labels = batch
    colour = images.float().mean(dim=(2, 3))  # (n, 3)
    groups = [colour[labels == c] for c in range(10)]
    grand = colour.mean(0)
    between = sum(len(g) * (g.mean(0) - grand) ** 2 for g in groups) / (10 - 1)
    within = sum(((g - g.mean(0)) ** 2).sum(0) for g in groups) / (len(colour) - 10)
    f_statistic = between / within
    assert float(f_statistic.max()) < 3.5, f_statistic


def test_nearest_class_mean_on_pixels_is_near_chance(batch):
    """A linear-ish template match cannot separate the classes; the study's linear model stayed
    at chance (11%). The shapes themselves differ (checked above), so it takes a better model."""
    images, labels = batch
    x = shapes.normalize(images).flatten(1)
    train, test = slice(0, 800), slice(800, None)
    means = torch.stack([x[train][labels[train] == c].mean(0) for c in range(10)])
    predicted = torch.cdist(x[test], means).argmin(1)
    accuracy = float((predicted == labels[test]).float().mean())
    assert accuracy < 0.25


def test_normalisation_constants():
    extremes = torch.tensor([0, 255], dtype=torch.uint8)
    assert shapes.normalize(extremes).tolist() == [-2.0, 2.0]
    assert shapes.NORM_MEAN == 0.5 and shapes.NORM_STD == 0.25


def test_zero_images_and_bad_counts():
    images, labels = shapes.make_shapes(0, seed=1)
    assert images.shape == (0, 3, 32, 32) and labels.shape == (0,)
    assert shapes.make_shapes(np.int64(3), seed=1)[0].shape == (3, 3, 32, 32)
    for bad in (-1, 2.0, True):
        with pytest.raises(GreenperfError):
            shapes.make_shapes(bad, seed=1)


# --- CIFAR-10 binary reader ---------------------------------------------------------------------


def _records(labels: list[int], seed: int) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    rows = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], pixels], axis=1)
    return rows.tobytes(), pixels.reshape(-1, 3, 32, 32)


def _write_cifar(folder: Path) -> dict[str, tuple[list[int], np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for index, (name, labels) in enumerate(
        [
            ("data_batch_2.bin", [9, 0]),
            ("data_batch_1.bin", [1, 2, 3]),
            ("data_batch_10.bin", [4]),
            ("test_batch.bin", [5, 6]),
        ]
    ):
        payload, pixels = _records(labels, seed=index)
        (folder / name).write_bytes(payload)
        content[name] = (labels, pixels)
    return content


def test_cifar_reader_concatenates_batches_in_numeric_order(tmp_path):
    content = _write_cifar(tmp_path)
    train_images, train_labels, test_images, test_labels = shapes.load_cifar10_binary(tmp_path)
    order = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_10.bin"]
    assert train_labels.tolist() == [label for name in order for label in content[name][0]]
    assert train_labels.dtype == torch.int64 and train_images.dtype == torch.uint8
    assert train_images.shape == (6, 3, 32, 32) and test_images.shape == (2, 3, 32, 32)
    expected = np.concatenate([content[name][1] for name in order])
    np.testing.assert_array_equal(train_images.numpy(), expected)  # channel-major (CHW) records
    assert test_labels.tolist() == [5, 6]
    np.testing.assert_array_equal(test_images.numpy(), content["test_batch.bin"][1])


def test_cifar_reader_finds_the_unpacked_archive_folder(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-bin")
    train_images, *_ = shapes.load_cifar10_binary(tmp_path)
    assert train_images.shape[0] == 6


def _expect_error(folder: Path, *fragments: str) -> None:
    with pytest.raises(GreenperfError) as info:
        shapes.load_cifar10_binary(folder)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_cifar_missing_folder_test_batch_and_training_batches(tmp_path):
    _expect_error(tmp_path / "absent", "absent", "does not exist")
    _write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    _expect_error(tmp_path, "test_batch.bin", "missing")
    _write_cifar(tmp_path)
    for path in tmp_path.glob("data_batch_*.bin"):
        path.unlink()
    _expect_error(tmp_path, "data_batch_*.bin", "no CIFAR-10 training batch")


def test_cifar_truncated_empty_and_bad_label_files(tmp_path):
    _write_cifar(tmp_path)
    path = tmp_path / "data_batch_2.bin"
    payload = path.read_bytes()
    path.write_bytes(payload[:-10])
    _expect_error(tmp_path, "data_batch_2.bin", "not a multiple of the 3073-byte record")
    path.write_bytes(b"")
    _expect_error(tmp_path, "data_batch_2.bin", "empty")
    bad, _ = _records([3, 10], seed=9)
    (tmp_path / "data_batch_2.bin").write_bytes(payload)
    (tmp_path / "test_batch.bin").write_bytes(bad)
    _expect_error(tmp_path, "test_batch.bin", "record 1 has label 10")
