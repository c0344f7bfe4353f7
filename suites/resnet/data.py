"""Data for the ResNet workload: procedural Shapes-10, and a reader for real CIFAR-10 binaries.

Shapes-10 is 32x32 RGB in 10 classes that differ only in geometry. Position, size, rotation,
colours, background, clutter and noise are random nuisances; colour is chosen relative to the
background so it carries no label information. A linear model stays at chance on it and an MLP
tops out near 60%, while a small ResNet passes 90% (shared/research/workloads.md, section 2).

Rendering: each shape (and one line sprite for clutter) is drawn once as an anti-aliased
coverage mask from a signed-distance function. The masks sit in one atlas image; every layer of
every image is then placed with its own affine map in a single ``grid_sample`` call per chunk.
The sampling grid is built by hand because ``F.affine_grid`` was about 6x slower on the CPU.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import GreenperfError

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
CHUNK = 1024

# Sprite geometry. Shapes are defined in units of their radius and drawn on a canvas of
# +-SHAPE_EXTENT units, which leaves a few empty pixels around every shape: sampling outside a
# sprite is clamped onto that empty border, which is what keeps atlas neighbours apart.
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


# --- Signed-distance functions (negative inside), on points of shape (..., 2) ----------------


def _sdf_circle(p: torch.Tensor, centre: tuple[float, float], radius: float) -> torch.Tensor:
    return torch.linalg.vector_norm(p - p.new_tensor(centre), dim=-1) - radius


def _sdf_box(
    p: torch.Tensor, half_x: float, half_y: float, centre: tuple[float, float] = (0.0, 0.0)
) -> torch.Tensor:
    q = (p - p.new_tensor(centre)).abs() - p.new_tensor((half_x, half_y))
    outside = torch.linalg.vector_norm(q.clamp(min=0.0), dim=-1)
    inside = q.max(dim=-1).values.clamp(max=0.0)
    return outside + inside


def _sdf_polygon(p: torch.Tensor, vertices: list[tuple[float, float]]) -> torch.Tensor:
    """Exact distance to the polygon's edges, signed by the even-odd rule."""
    distance = torch.full(p.shape[:-1], float("inf"), dtype=p.dtype)
    inside = torch.zeros(p.shape[:-1], dtype=torch.bool)
    px, py = p[..., 0], p[..., 1]
    for i, (ax, ay) in enumerate(vertices):
        bx, by = vertices[(i + 1) % len(vertices)]
        ex, ey = bx - ax, by - ay
        t = (((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
        distance = torch.minimum(distance, torch.hypot(px - ax - t * ex, py - ay - t * ey))
        if ey != 0.0:  # horizontal edges never cross a horizontal ray
            crosses = (ay > py) != (by > py)
            inside ^= crosses & (px < ax + (py - ay) * ex / ey)
    return torch.where(inside, -distance, distance)


def _regular_star(points: int, outer: float, inner: float) -> list[tuple[float, float]]:
    vertices = []
    for k in range(2 * points):
        radius = outer if k % 2 == 0 else inner
        angle = math.pi / 2 + k * math.pi / points
        vertices.append((radius * math.cos(angle), radius * math.sin(angle)))
    return vertices


def _class_sdf(name: str, p: torch.Tensor) -> torch.Tensor:
    """Each shape fits in (about) the unit disk, so 'radius' means the same for all classes."""
    if name == "disk":
        return _sdf_circle(p, (0.0, 0.0), 1.0)
    if name == "ring":
        return _sdf_circle(p, (0.0, 0.0), 0.78).abs() - 0.22
    if name == "square":
        return _sdf_box(p, 0.72, 0.72)
    if name == "square_outline":
        return _sdf_box(p, 0.6, 0.6).abs() - 0.15
    if name == "triangle":
        return _sdf_polygon(p, _regular_star(3, 1.0, 0.5)[::2])
    if name == "plus":
        return torch.minimum(_sdf_box(p, 0.95, 0.27), _sdf_box(p, 0.27, 0.95))
    if name == "star":
        return _sdf_polygon(p, _regular_star(5, 1.0, 0.42))
    if name == "crescent":
        return torch.maximum(_sdf_circle(p, (0.0, 0.0), 1.0), -_sdf_circle(p, (0.42, 0.0), 0.8))
    if name == "two_dots":
        return torch.minimum(_sdf_circle(p, (-0.55, 0.0), 0.4), _sdf_circle(p, (0.55, 0.0), 0.4))
    if name == "l_shape":
        vertical = _sdf_box(p, 0.26, 0.86, centre=(-0.44, 0.0))
        foot = _sdf_box(p, 0.7, 0.26, centre=(0.0, 0.6))
        return torch.minimum(vertical, foot)
    raise KeyError(name)


def _supersampled_coords(extent_x: float, extent_y: float) -> torch.Tensor:
    """Sample points of a SPRITE_PX canvas at SUPERSAMPLE^2 points per pixel; (H*s, W*s, 2)."""
    fine = SPRITE_PX * SUPERSAMPLE
    centres = (torch.arange(fine, dtype=torch.float64) + 0.5) / fine * 2.0 - 1.0
    ys, xs = torch.meshgrid(centres * extent_y, centres * extent_x, indexing="ij")
    return torch.stack((xs, ys), dim=-1)


def _coverage(inside: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(inside.to(torch.float64)[None, None], SUPERSAMPLE)[0, 0]


def _render_line_sprite() -> torch.Tensor:
    p = _supersampled_coords(LINE_EXTENT, LINE_HALF_HEIGHT_PX)
    along = (p[..., 0].abs() <= 1.0).to(torch.float64)
    # Coverage of a one-pixel box centred at y by the bar |y| <= w/2: the bar convolved with the
    # output pixel footprint, so the line's edges are anti-aliased at the size it is drawn.
    half = LINE_SPRITE_WIDTH_PX / 2.0
    y = p[..., 1]
    across = torch.minimum(y + 0.5, y.new_tensor(half)) - torch.maximum(
        y - 0.5, y.new_tensor(-half)
    )
    profile = along * across.clamp(min=0.0)
    return F.avg_pool2d(profile[None, None], SUPERSAMPLE)[0, 0]


def render_sprites() -> torch.Tensor:
    """The 10 class masks and the line mask, float32 (11, SPRITE_PX, SPRITE_PX) in [0, 1]."""
    p = _supersampled_coords(SHAPE_EXTENT, SHAPE_EXTENT)
    masks = [_coverage(_class_sdf(name, p) <= 0.0) for name in CLASS_NAMES]
    masks.append(_render_line_sprite())
    return torch.stack(masks).to(torch.float32)


# --- Image generation -------------------------------------------------------------------------


def _uniform(
    shape: tuple[int, ...], low: float, high: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=device) * (high - low) + low


def _pixel_centres(device: torch.device) -> torch.Tensor:
    """(IMAGE_SIZE*IMAGE_SIZE, 2) pixel-centre coordinates (x, y), row-major."""
    c = torch.arange(IMAGE_SIZE, dtype=torch.float32, device=device) + 0.5
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    return torch.stack((xs.reshape(-1), ys.reshape(-1)), dim=-1)


def _layer_affines(
    count: int, labels: torch.Tensor, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image, per-layer maps from pixel coordinates to sprite coordinates in [-1, 1].

    Returns (matrix (count, L, 2, 2), centre (count, L, 2), sprite index (count, L)), with the
    layers in drawing order: lines under the shape, the shape, lines over it.
    """
    shape = (count, _LAYERS)
    angle = _uniform(shape, 0.0, 2.0 * math.pi, gen, device)
    # x-scale and y-scale from output pixels to sprite canvas units, per layer.
    length = _uniform(shape, *LINE_LENGTH_RANGE, gen, device)
    width = _uniform(shape, *LINE_WIDTH_RANGE, gen, device)
    scale_x = 2.0 / (length * LINE_EXTENT)
    scale_y = LINE_SPRITE_WIDTH_PX / (width * LINE_HALF_HEIGHT_PX)
    centre = _uniform((count, _LAYERS, 2), 0.0, float(IMAGE_SIZE), gen, device)
    sprite = torch.full(shape, LINE_SPRITE_INDEX, dtype=torch.long, device=device)

    # The shape layer: isotropic, and its centre keeps the whole shape inside the image.
    radius = _uniform((count,), *RADIUS_RANGE, gen, device)
    shape_scale = 1.0 / (radius * SHAPE_EXTENT)
    scale_x[:, LINES_UNDER] = shape_scale
    scale_y[:, LINES_UNDER] = shape_scale
    fraction = torch.rand((count, 2), generator=gen, device=device)
    centre[:, LINES_UNDER] = radius[:, None] + fraction * (IMAGE_SIZE - 2.0 * radius[:, None])
    sprite[:, LINES_UNDER] = labels

    cos, sin = torch.cos(angle), torch.sin(angle)
    # Rotate by -angle, then scale: sprite = diag(sx, sy) @ R(-angle) @ (pixel - centre).
    matrix = torch.stack(
        (
            torch.stack((scale_x * cos, scale_x * sin), -1),
            torch.stack((-scale_y * sin, scale_y * cos), -1),
        ),
        dim=-2,
    )
    return matrix, centre, sprite


def _sample_layers(
    atlas: torch.Tensor,
    matrix: torch.Tensor,
    centre: torch.Tensor,
    sprite: torch.Tensor,
    pixels: torch.Tensor,
) -> torch.Tensor:
    """Coverage of every layer at every pixel, (count, L, H, W), with one grid_sample call."""
    count = matrix.shape[0]
    # sprite = M @ pixel - M @ centre, for all pixels at once as one batched (2x3)@(3xP) product;
    # this was several times faster than einsum over the broadcast differences.
    offset = -(matrix @ centre[..., None])
    affine = torch.cat((matrix, offset), dim=-1).reshape(count * _LAYERS, 2, 3)
    homogeneous = torch.cat((pixels.T, pixels.new_ones(1, pixels.shape[0])))
    local = torch.matmul(affine, homogeneous).clamp_(-1.0, 1.0)  # (count*L, 2, P)
    # Sprites are stacked vertically in the atlas: shift y into the sprite's own cell.
    cell = 1.0 + 2.0 * sprite.reshape(-1, 1).to(local.dtype)
    local[:, 1].add_(cell).div_(_NUM_SPRITES).sub_(1.0)
    grid = local.transpose(1, 2).reshape(1, count * _LAYERS * IMAGE_SIZE, IMAGE_SIZE, 2)
    sampled = F.grid_sample(atlas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled.reshape(count, _LAYERS, IMAGE_SIZE, IMAGE_SIZE)


def _backgrounds(
    count: int, gen: torch.Generator, device: torch.device, pixels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Base colour + linear ramp + bilinear low-frequency texture; returns (images, base)."""
    base = _uniform((count, CHANNELS), *BASE_COLOUR_RANGE, gen, device)
    # Each slope component is at most A / size, so the ramp peaks at +-A in the corners.
    slope = _uniform((count, CHANNELS, 2), -1.0, 1.0, gen, device) * (
        GRADIENT_AMPLITUDE / IMAGE_SIZE
    )
    offsets = pixels - IMAGE_SIZE / 2.0
    ramp = (slope.reshape(-1, 2) @ offsets.T).reshape(count, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    coarse = _uniform(
        (count, CHANNELS, TEXTURE_GRID, TEXTURE_GRID),
        -TEXTURE_AMPLITUDE,
        TEXTURE_AMPLITUDE,
        gen,
        device,
    )
    texture = F.interpolate(
        coarse, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False
    )
    return base[:, :, None, None] + ramp + texture, base


def _render_chunk(
    labels: torch.Tensor, atlas: torch.Tensor, pixels: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    device = labels.device
    count = labels.shape[0]
    images, base = _backgrounds(count, gen, device, pixels)
    matrix, centre, sprite = _layer_affines(count, labels, gen, device)
    coverage = _sample_layers(atlas, matrix, centre, sprite, pixels)

    colours = torch.rand((count, _LAYERS, CHANNELS), generator=gen, device=device)
    offset = _uniform((count, CHANNELS), *COLOUR_OFFSET_RANGE, gen, device)
    colours[:, LINES_UNDER] = torch.remainder(base + offset, 1.0)

    for layer in range(_LAYERS):
        alpha = coverage[:, layer : layer + 1]
        colour = colours[:, layer, :, None, None]
        images.mul_(1.0 - alpha).add_(alpha * colour)

    images.add_(torch.randn(images.shape, generator=gen, device=device), alpha=NOISE_STD)
    return images.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


def make_shapes(n: int, seed: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` Shapes-10 images: uint8 (n, 3, 32, 32) and int64 labels (n,).

    Classes are balanced (counts differ by at most one) in random order. The same seed on the
    same device and software gives identical tensors; work is done in chunks of 1,024 images.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise GreenperfError("n", f"must be a non-negative integer, got {n!r}")
    n = int(n)
    dev = torch.device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed))

    order = torch.randperm(n, generator=gen, device=dev)
    labels = torch.remainder(order, NUM_CLASSES)
    images = torch.empty((n, CHANNELS, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8, device=dev)
    atlas = render_sprites().to(dev).reshape(1, 1, _NUM_SPRITES * SPRITE_PX, SPRITE_PX)
    pixels = _pixel_centres(dev)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        images[start:stop] = _render_chunk(labels[start:stop], atlas, pixels, gen)
    return images, labels


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to the float input the reference model expects."""
    return (images.float() / 255.0 - NORM_MEAN) / NORM_STD


def checksum(images: torch.Tensor, labels: torch.Tensor) -> str:
    """sha256 over shapes, dtypes and bytes of images and labels."""
    digest = hashlib.sha256()
    for tensor in (images, labels):
        array = tensor.detach().cpu().contiguous().numpy()
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
