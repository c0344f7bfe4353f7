"""Data for the ResNet workload: procedural Shapes-10, and a reader for real CIFAR-10 binaries.

Shapes-10 is 32x32 RGB in 10 classes that differ only in geometry. Position, size, rotation,
colours, background, clutter and noise are random nuisances; colour is chosen relative to the
background so it carries no label information. A linear model stays at chance on it and an MLP
of the same cost tops out far below a small ResNet (benchmarks/test_bench_resnet_vs_mlp.py).

Rendering: each shape (and one line sprite for clutter) is drawn once as an anti-aliased
coverage mask from a signed-distance function. Every layer of every image is then placed with
its own affine map and sampled bilinearly from its mask.

**The same bytes on every machine.** Everything is computed with numpy in float64 from
``greenperf.bitexact``: random numbers from raw bit-generator words, rotations from a table of
exactly reproducible cosines, and only single IEEE operations applied element-wise (no ``sum``,
``matmul``, ``grid_sample`` or transcendental function over arrays), so neither the CPU's
instruction set, nor the thread count, nor the library versions change a single pixel. The
images are stored as uint8, as real image data is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from greenperf.bitexact import Stream, cos_sin_table, cos_sin_turns, little_endian
from greenperf.errors import GreenperfError

CLASS_NAMES: tuple[str, ...] = (
    "disk",
    "ring",
    "square",
    "square_outline",
    "triangle",
    "plus",
    "star",
    "crescent",
    "two_dots",
    "l_shape",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 32
CHANNELS = 3
# Normalisation used by the reference model: (x / 255 - MEAN) / STD, per channel alike.
NORM_MEAN = 0.5
NORM_STD = 0.25

# Nuisance parameters of the data set (pixels unless stated).
RADIUS_RANGE = (7.0, 12.0)
COLOUR_OFFSET_RANGE = (0.25, 0.75)  # foreground = background base + offset, mod 1, per channel
BASE_COLOUR_RANGE = (0.1, 0.9)
GRADIENT_AMPLITUDE = 0.25  # the background ramp stays within +- this of the base colour
TEXTURE_GRID = 4
TEXTURE_AMPLITUDE = 0.15
LINES_UNDER = 2
LINES_OVER = 1
LINE_LENGTH_RANGE = (8.0, 32.0)
LINE_WIDTH_RANGE = (1.0, 1.6)
NOISE_STD = 0.06
# Rotations are whole steps of a full turn, so their cosines come from one exact table.
ROTATION_STEPS = 4096
# Images are drawn in chunks (a constant: the draw order, hence the data, depends on it).
CHUNK = 128

# Sprite geometry. Shapes are defined in units of their radius and drawn on a canvas of
# +-SHAPE_EXTENT units, which leaves a few empty pixels around every shape: sample points are
# clamped onto that empty border, which is what keeps a placed shape from repeating.
SPRITE_PX = 48
SUPERSAMPLE = 4
SHAPE_EXTENT = 1.2
# The line sprite is a horizontal bar: along x in units of its half length (canvas +-LINE_EXTENT),
# across in output pixels (canvas +-LINE_HALF_HEIGHT_PX), drawn LINE_SPRITE_WIDTH_PX wide and
# pre-filtered with a one-pixel box so it is anti-aliased at the output resolution.
LINE_EXTENT = 1.2
LINE_HALF_HEIGHT_PX = 4.0
LINE_SPRITE_WIDTH_PX = 1.3
LINE_SPRITE_INDEX = NUM_CLASSES
_NUM_SPRITES = NUM_CLASSES + 1
_LAYERS = LINES_UNDER + 1 + LINES_OVER


# --- Signed-distance functions (negative inside), on float64 point arrays (..., 2) -------------


def _length(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sqrt(x * x + y * y)


def _sdf_circle(p: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    return _length(p[..., 0] - centre[0], p[..., 1] - centre[1]) - radius


def _sdf_box(
    p: np.ndarray, half_x: float, half_y: float, centre: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    qx = np.abs(p[..., 0] - centre[0]) - half_x
    qy = np.abs(p[..., 1] - centre[1]) - half_y
    outside = _length(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    inside = np.minimum(np.maximum(qx, qy), 0.0)
    return outside + inside


def _sdf_polygon(p: np.ndarray, vertices: list[tuple[float, float]]) -> np.ndarray:
    """Exact distance to the polygon's edges, signed by the even-odd rule."""
    px, py = p[..., 0], p[..., 1]
    distance = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, dtype=bool)
    for i, (ax, ay) in enumerate(vertices):
        bx, by = vertices[(i + 1) % len(vertices)]
        ex, ey = bx - ax, by - ay
        t = np.clip(((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        distance = np.minimum(distance, _length(px - ax - t * ex, py - ay - t * ey))
        if ey != 0.0:  # horizontal edges never cross a horizontal ray
            crosses = (ay > py) != (by > py)
            inside ^= crosses & (px < ax + (py - ay) * ex / ey)
    return np.where(inside, -distance, distance)


def _regular_star(points: int, outer: float, inner: float) -> list[tuple[float, float]]:
    """Vertices at a quarter turn plus k half-steps of 1/points turn, alternately out and in."""
    vertices = []
    for k in range(2 * points):
        radius = outer if k % 2 == 0 else inner
        cos, sin = cos_sin_turns(points + 2 * k, 4 * points)
        vertices.append((radius * cos, radius * sin))
    return vertices


def _class_sdf(name: str, p: np.ndarray) -> np.ndarray:
    """Each shape fits in (about) the unit disk, so 'radius' means the same for all classes."""
    if name == "disk":
        return _sdf_circle(p, (0.0, 0.0), 1.0)
    if name == "ring":
        return np.abs(_sdf_circle(p, (0.0, 0.0), 0.78)) - 0.22
    if name == "square":
        return _sdf_box(p, 0.72, 0.72)
    if name == "square_outline":
        return np.abs(_sdf_box(p, 0.6, 0.6)) - 0.15
    if name == "triangle":
        return _sdf_polygon(p, _regular_star(3, 1.0, 0.5)[::2])
    if name == "plus":
        return np.minimum(_sdf_box(p, 0.95, 0.27), _sdf_box(p, 0.27, 0.95))
    if name == "star":
        return _sdf_polygon(p, _regular_star(5, 1.0, 0.42))
    if name == "crescent":
        return np.maximum(_sdf_circle(p, (0.0, 0.0), 1.0), -_sdf_circle(p, (0.42, 0.0), 0.8))
    if name == "two_dots":
        return np.minimum(_sdf_circle(p, (-0.55, 0.0), 0.4), _sdf_circle(p, (0.55, 0.0), 0.4))
    if name == "l_shape":
        vertical = _sdf_box(p, 0.26, 0.86, centre=(-0.44, 0.0))
        foot = _sdf_box(p, 0.7, 0.26, centre=(0.0, 0.6))
        return np.minimum(vertical, foot)
    raise KeyError(name)


def _supersampled_coords(extent_x: float, extent_y: float) -> np.ndarray:
    """Sample points of a SPRITE_PX canvas at SUPERSAMPLE^2 points per pixel; (H*s, W*s, 2)."""
    fine = SPRITE_PX * SUPERSAMPLE
    centres = (np.arange(fine, dtype=np.float64) + 0.5) / fine * 2.0 - 1.0
    xs = np.broadcast_to(centres[None, :] * extent_x, (fine, fine))
    ys = np.broadcast_to(centres[:, None] * extent_y, (fine, fine))
    return np.stack((xs, ys), axis=-1)


def _box_average(fine: np.ndarray) -> np.ndarray:
    """Mean over SUPERSAMPLE x SUPERSAMPLE blocks, adding the block's values in a fixed order."""
    blocks = fine.reshape(SPRITE_PX, SUPERSAMPLE, SPRITE_PX, SUPERSAMPLE)
    total = np.zeros((SPRITE_PX, SPRITE_PX))
    for dy in range(SUPERSAMPLE):
        for dx in range(SUPERSAMPLE):
            total = total + blocks[:, dy, :, dx]
    return total / (SUPERSAMPLE * SUPERSAMPLE)


def _render_line_sprite() -> np.ndarray:
    p = _supersampled_coords(LINE_EXTENT, LINE_HALF_HEIGHT_PX)
    along = (np.abs(p[..., 0]) <= 1.0).astype(np.float64)
    # Coverage of a one-pixel box centred at y by the bar |y| <= w/2: the bar convolved with the
    # output pixel footprint, so the line's edges are anti-aliased at the size it is drawn.
    half = LINE_SPRITE_WIDTH_PX / 2.0
    y = p[..., 1]
    across = np.minimum(y + 0.5, half) - np.maximum(y - 0.5, -half)
    return _box_average(along * np.maximum(across, 0.0))


def render_sprites() -> np.ndarray:
    """The 10 class masks and the line mask, float64 (11, SPRITE_PX, SPRITE_PX) in [0, 1]."""
    p = _supersampled_coords(SHAPE_EXTENT, SHAPE_EXTENT)
    masks = [_box_average((_class_sdf(name, p) <= 0.0).astype(np.float64))
             for name in CLASS_NAMES]
    masks.append(_render_line_sprite())
    return np.stack(masks)


# --- Image generation -------------------------------------------------------------------------

# Sprites padded with one empty pixel on every side and flattened, so that a bilinear tap that
# falls outside a sprite reads a zero. The four taps of a pixel are gathered with one index from
# four shifted copies (the sprite at +0, +1, +row, +row+1), stored as value and difference.
_PADDED = SPRITE_PX + 2


def _bilinear_tables(sprites: np.ndarray) -> tuple[np.ndarray, ...]:
    padded = np.zeros((sprites.shape[0], _PADDED, _PADDED))
    padded[:, 1:-1, 1:-1] = sprites
    flat = np.concatenate([padded.reshape(-1), np.zeros(_PADDED + 1)])
    size = padded.size
    top_left, top_right = flat[:size], flat[1 : size + 1]
    bottom_left = flat[_PADDED : size + _PADDED]
    bottom_right = flat[_PADDED + 1 : size + _PADDED + 1]
    # float32 halves the memory the gathers touch; the rounding is IEEE's, the same everywhere.
    return tuple(table.astype(np.float32) for table in (
        top_left, top_right - top_left, bottom_left, bottom_right - bottom_left))


_PIXELS = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5  # pixel centres along one axis


def _layer_affines(
    labels: np.ndarray, stream: Stream, cos_table: np.ndarray, sin_table: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image, per-layer maps from pixel coordinates to sprite coordinates in [-1, 1].

    Returns (matrix (count, L, 2, 2), centre (count, L, 2), sprite index (count, L)), with the
    layers in drawing order: lines under the shape, the shape, lines over it.
    """
    count = labels.shape[0]
    shape = (count, _LAYERS)
    turn = stream.below(ROTATION_STEPS, shape)
    cos, sin = cos_table[turn], sin_table[turn]
    # x-scale and y-scale from output pixels to sprite canvas units, per layer.
    length = stream.uniform(shape, *LINE_LENGTH_RANGE)
    width = stream.uniform(shape, *LINE_WIDTH_RANGE)
    scale_x = 2.0 / (length * LINE_EXTENT)
    scale_y = LINE_SPRITE_WIDTH_PX / (width * LINE_HALF_HEIGHT_PX)
    centre = stream.uniform((count, _LAYERS, 2), 0.0, float(IMAGE_SIZE))
    sprite = np.full(shape, LINE_SPRITE_INDEX, dtype=np.int64)

    # The shape layer: isotropic, and its centre keeps the whole shape inside the image.
    radius = stream.uniform(count, *RADIUS_RANGE)
    shape_scale = 1.0 / (radius * SHAPE_EXTENT)
    scale_x[:, LINES_UNDER] = shape_scale
    scale_y[:, LINES_UNDER] = shape_scale
    fraction = stream.uniform((count, 2))
    centre[:, LINES_UNDER] = radius[:, None] + fraction * (IMAGE_SIZE - 2.0 * radius[:, None])
    sprite[:, LINES_UNDER] = labels

    # Rotate by -angle, then scale: sprite = diag(sx, sy) @ R(-angle) @ (pixel - centre).
    matrix = np.stack(
        (np.stack((scale_x * cos, scale_x * sin), -1),
         np.stack((-scale_y * sin, scale_y * cos), -1)),
        axis=-2,
    )
    return matrix, centre, sprite


def _sprite_coordinate(row: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """One sprite-pixel coordinate (x or y) of every image pixel, (count, L, H, W).

    ``row`` is one row of the layer matrix, (count, L, 2). The affine map is split into a part
    that varies along x and one that varies along y, so the full-size array costs one add. The
    result is in padded sprite pixels: [-1, 1] in sprite units spans the sprite's outer pixel
    edges, +1 for the padding, -0.5 for pixel centres; clamping keeps far samples on the empty
    border.
    """
    half = SPRITE_PX / 2.0
    gain_x, gain_y = row[..., 0] * half, row[..., 1] * half
    offset = (half + 0.5) - (gain_x * centre[..., 0] + gain_y * centre[..., 1])
    along_x = gain_x[..., None] * _PIXELS  # (count, L, W)
    along_y = gain_y[..., None] * _PIXELS + offset[..., None]  # (count, L, H)
    return np.clip(along_y[..., :, None] + along_x[..., None, :], 0.5, SPRITE_PX + 0.5)


def _sample_layers(
    tables: tuple[np.ndarray, ...], matrix: np.ndarray, centre: np.ndarray, sprite: np.ndarray
) -> np.ndarray:
    """Bilinear coverage of every layer at every pixel, (count, L, H, W)."""
    fx = _sprite_coordinate(matrix[..., 0, :], centre)
    fy = _sprite_coordinate(matrix[..., 1, :], centre)
    x0, y0 = np.floor(fx), np.floor(fy)
    wx, wy = fx - x0, fy - y0
    # Small integers in float64 are exact, so the flat index is built before one conversion.
    first = (sprite * (_PADDED * _PADDED)).astype(np.float64)[..., None, None]
    index = (y0 * _PADDED + x0 + first).astype(np.intp)
    top_left, top_step, bottom_left, bottom_step = tables
    # float32 gathers times float64 weights: numpy promotes array with array to float64 in
    # every version (only scalars were ever promoted differently).
    top = top_left.take(index) + top_step.take(index) * wx
    bottom = bottom_left.take(index) + bottom_step.take(index) * wx
    return top + (bottom - top) * wy


def _texture_taps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear upsampling from TEXTURE_GRID to IMAGE_SIZE (half-pixel centres, edge clamp)."""
    source = np.maximum((np.arange(IMAGE_SIZE) + 0.5) * (TEXTURE_GRID / IMAGE_SIZE) - 0.5, 0.0)
    low = np.floor(source)
    weight = source - low
    low = low.astype(np.int64)
    return low, np.minimum(low + 1, TEXTURE_GRID - 1), weight


def _backgrounds(count: int, stream: Stream) -> tuple[np.ndarray, np.ndarray]:
    """Base colour + linear ramp + bilinear low-frequency texture; returns (images, base)."""
    base = stream.uniform((count, CHANNELS), *BASE_COLOUR_RANGE)
    # Each slope component is at most A / size, so the ramp peaks at +-A in the corners.
    slope = stream.uniform((count, CHANNELS, 2), -1.0, 1.0) * (GRADIENT_AMPLITUDE / IMAGE_SIZE)
    centred = _PIXELS - IMAGE_SIZE / 2.0
    ramp = (slope[..., 1, None] * centred)[..., :, None] + (slope[..., 0, None] * centred)[
        ..., None, :]
    coarse = stream.uniform((count, CHANNELS, TEXTURE_GRID, TEXTURE_GRID),
                            -TEXTURE_AMPLITUDE, TEXTURE_AMPLITUDE)
    low, high, weight = _texture_taps()
    rows = (coarse[:, :, low, :] * (1.0 - weight[:, None])
            + coarse[:, :, high, :] * weight[:, None])  # (count, C, H, grid)
    texture = rows.take(low, axis=-1) * (1.0 - weight) + rows.take(high, axis=-1) * weight
    return base[:, :, None, None] + ramp + texture, base


def _render_chunk(labels: np.ndarray, tables: tuple[np.ndarray, ...], stream: Stream,
                  cos_table: np.ndarray, sin_table: np.ndarray) -> np.ndarray:
    count = labels.shape[0]
    images, base = _backgrounds(count, stream)
    matrix, centre, sprite = _layer_affines(labels, stream, cos_table, sin_table)
    coverage = _sample_layers(tables, matrix, centre, sprite)

    colours = stream.uniform((count, _LAYERS, CHANNELS))
    shifted = base + stream.uniform((count, CHANNELS), *COLOUR_OFFSET_RANGE)
    colours[:, LINES_UNDER] = shifted - np.floor(shifted)  # mod 1

    for layer in range(_LAYERS):
        alpha = coverage[:, layer, None]
        images = images + alpha * (colours[:, layer, :, None, None] - images)

    images = images + NOISE_STD * stream.normal(images.shape, terms=4)
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def make_shapes_numpy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` Shapes-10 images as numpy arrays: uint8 (n, 3, 32, 32), int64 labels (n,).

    Classes are balanced (counts differ by at most one) in random order. The same (n, seed)
    gives the same bytes on every machine.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise GreenperfError("n", f"must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GreenperfError("seed", f"must be a non-negative integer, got {seed!r}")
    n = int(n)
    labels = Stream(int(seed), 0x5A4E5).permutation(n) % NUM_CLASSES
    images = np.empty((n, CHANNELS, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    tables = _bilinear_tables(render_sprites())
    cos_table, sin_table = cos_sin_table(ROTATION_STEPS)
    for chunk, start in enumerate(range(0, n, CHUNK)):
        stop = min(start + CHUNK, n)
        # One stream per chunk: a chunk's pixels do not depend on how many chunks came before.
        stream = Stream(int(seed), 0x5A4E5, chunk + 1)
        images[start:stop] = _render_chunk(labels[start:stop], tables, stream,
                                           cos_table, sin_table)
    return images, labels


def make_shapes(n: int, seed: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` Shapes-10 images: uint8 (n, 3, 32, 32) and int64 labels (n,) tensors.

    The data is always generated on the CPU (so every device trains on the same bytes) and
    then moved to ``device``.
    """
    images, labels = make_shapes_numpy(n, seed)
    return (torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to the float input the reference model expects."""
    return (images.float() / 255.0 - NORM_MEAN) / NORM_STD


def checksum(images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> str:
    """sha256 over shapes, dtypes and bytes of images and labels."""
    digest = hashlib.sha256()
    for tensor in (images, labels):
        array = little_endian(tensor.detach().cpu().numpy() if isinstance(
            tensor, torch.Tensor) else tensor)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# --- Real CIFAR-10, binary version ------------------------------------------------------------

CIFAR_RECORD_BYTES = 1 + CHANNELS * IMAGE_SIZE * IMAGE_SIZE
CIFAR_TEST_FILE = "test_batch.bin"
CIFAR_TRAIN_GLOB = "data_batch_*.bin"


def _read_cifar_file(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise GreenperfError(str(path), f"cannot read: {err}") from err
    if not data:
        raise GreenperfError(str(path), "is empty")
    if len(data) % CIFAR_RECORD_BYTES:
        raise GreenperfError(
            str(path),
            f"size {len(data)} is not a multiple of the {CIFAR_RECORD_BYTES}-byte record "
            "(truncated or not the CIFAR-10 binary version)",
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    labels = records[:, 0]
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise GreenperfError(
            str(path),
            f"record {int(bad[0])} has label {int(labels[bad[0]])}, expected 0..{NUM_CLASSES - 1}"
            " (CIFAR-100 files have two label bytes)",
        )
    images = records[:, 1:].reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _batch_order(path: Path) -> tuple[int, str]:
    suffix = path.stem.rsplit("_", 1)[-1]
    return (int(suffix) if suffix.isdigit() else 1 << 30, path.name)


def load_cifar10_binary(
    folder: Path,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read a local CIFAR-10 binary copy: (train_images, train_labels, test_images, test_labels).

    ``folder`` holds ``data_batch_*.bin`` (all of them are used, at least one is required) and
    ``test_batch.bin``; the folder the official archive unpacks to (``cifar-10-batches-bin``)
    may also be given through its parent. Images are uint8 (n, 3, 32, 32), labels int64.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GreenperfError(str(folder), "CIFAR-10 folder does not exist")
    if not any(folder.glob(CIFAR_TRAIN_GLOB)) and (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    train_paths = sorted(folder.glob(CIFAR_TRAIN_GLOB), key=_batch_order)
    if not train_paths:
        raise GreenperfError(str(folder / CIFAR_TRAIN_GLOB), "no CIFAR-10 training batch found")
    test_path = folder / CIFAR_TEST_FILE
    if not test_path.is_file():
        raise GreenperfError(str(test_path), "missing CIFAR-10 test batch")

    train = [_read_cifar_file(path) for path in train_paths]
    test_images, test_labels = _read_cifar_file(test_path)
    train_images = torch.cat([images for images, _ in train])
    train_labels = torch.cat([labels for _, labels in train])
    return train_images, train_labels, test_images, test_labels
