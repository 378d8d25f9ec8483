"""dSprites, generated from its factors: shape, scale, orientation and position of one white sprite.

The factor grid is that of the original dataset (Matthey et al., 2017):

=============  ======  ==========================================
factor         values  grid
=============  ======  ==========================================
shape          3       square, ellipse, heart
scale          6       linspace(0.5, 1, 6)
orientation    40      linspace(0, 2π, 40) (radians; the endpoint is included, as in the original)
position x     32      linspace(0, 1, 32)
position y     32      linspace(0, 1, 32)
=============  ======  ==========================================

737,280 combinations. Images are binary, 64×64 (or any ``size``, e.g. 32 or 28 for speed), rendered
here by testing each pixel centre against the sprite's outline, so any subset of factors can be drawn
on demand. The sprite's extent at scale 1 and the margin that keeps it inside the image follow the
look of the original, not its exact pixels; :func:`load_npz` reads the original
``dsprites_ndarray_*.npz`` file with the same interface when a user has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.path import Path as Outline

from nine.config import NineError, first_line

SHAPES = ("square", "ellipse", "heart")
FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
GRID = {
    "shape": np.arange(3, dtype=float),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40),
    "pos_x": np.linspace(0.0, 1.0, 32),
    "pos_y": np.linspace(0.0, 1.0, 32),
}
SIZES = tuple(len(GRID[f]) for f in FACTORS)  # (3, 6, 40, 32, 32)
EXTENT = 0.15  # half-width of a scale-1 sprite, as a fraction of the image side (≈ 10 px of 64)
MARGIN = 0.22  # positions 0..1 map to centres in [MARGIN, 1 − MARGIN]: > EXTENT·√2, so a sprite never leaves the image


class DSpritesError(NineError, ValueError):
    """A factor index, size or file outside what dSprites allows; the message is one line."""


@dataclass(frozen=True)
class Sprites:
    """Images (N×1×size×size float32 in {0, 1}), factor indices (N×5 int) and factor values (N×5 float)."""

    images: np.ndarray
    classes: np.ndarray
    values: np.ndarray


def _unit_outline(shape: int, points: int = 96) -> np.ndarray:
    """The outline of a sprite of half-width 1 centred at 0, as a closed polygon (points×2)."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    if shape == 0:  # square
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    if shape == 1:  # ellipse, aspect 2:1 like the original's
        return np.stack([np.cos(t), 0.5 * np.sin(t)], axis=1)
    # heart: the classic parametric curve, rescaled to half-width 1 and centred; image rows grow
    # downwards, so y is negated to keep the lobes at the top at orientation 0
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    outline = np.stack([x, y], axis=1)
    outline -= (outline.max(0) + outline.min(0)) / 2
    return outline / np.abs(outline).max()


_OUTLINES = [_unit_outline(s) for s in range(3)]


def check_classes(classes: np.ndarray) -> np.ndarray:
    """Validate an N×5 array of factor indices against the grid; return it as int64."""
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.shape[1] != len(FACTORS) or not np.issubdtype(classes.dtype, np.integer):
        raise DSpritesError(f"factor indices of shape {classes.shape} and dtype {classes.dtype} are not allowed: "
                            f"need an N×5 integer array ({', '.join(FACTORS)})")
    for k, (name, size) in enumerate(zip(FACTORS, SIZES)):
        bad = (classes[:, k] < 0) | (classes[:, k] >= size)
        if bad.any():
            raise DSpritesError(f"{name} index {int(classes[bad, k][0])} is not allowed: must lie in 0..{size - 1}")
    return classes.astype(np.int64)


def render(classes: np.ndarray, size: int = 64) -> Sprites:
    """Render the sprites whose factor indices are the rows of ``classes`` (N×5) at size×size."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise DSpritesError(f"size={size!r} is not allowed: must be an integer >= 8")
    classes = check_classes(classes)
    values = np.stack([GRID[f][classes[:, k]] for k, f in enumerate(FACTORS)], axis=1)
    centres = (np.arange(size) + 0.5) / size
    pixels = np.stack(np.meshgrid(centres, centres, indexing="xy"), axis=-1).reshape(-1, 2)  # (x, y), row-major
    images = np.zeros((len(classes), 1, size, size), dtype=np.float32)
    for i, (shape, scale, angle, x, y) in enumerate(values):
        c, s = np.cos(angle), np.sin(angle)
        outline = _OUTLINES[int(shape)] * (EXTENT * scale) @ np.array([[c, s], [-s, c]])
        centre = MARGIN + (1 - 2 * MARGIN) * np.array([x, y])
        inside = Outline(outline + centre).contains_points(pixels)
        images[i, 0] = inside.reshape(size, size)
    return Sprites(images, classes, values)


def sample(n: int, seed: int = 0, size: int = 64, fixed: dict[str, int] | None = None) -> Sprites:
    """n sprites with factors drawn uniformly from the grid; ``fixed`` pins factors to an index."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DSpritesError(f"n={n!r} is not allowed: must be an integer >= 1")
    fixed = fixed or {}
    unknown = sorted(set(fixed) - set(FACTORS))
    if unknown:
        raise DSpritesError(f"factor {unknown[0]!r} is not allowed: factors are {', '.join(FACTORS)}")
    rng = np.random.default_rng(seed)
    classes = np.stack([np.full(n, fixed[f]) if f in fixed else rng.integers(0, size_, n)
                        for f, size_ in zip(FACTORS, SIZES)], axis=1)
    return render(classes, size)


def load_npz(path: str | Path, n: int | None = None, seed: int = 0) -> Sprites:
    """The original ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (keys ``imgs``, ``latents_classes``,
    ``latents_values``), or a random subset of n of its images, in the interface of :func:`render`.

    The original's factor arrays have a leading colour column (always 0), which is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise DSpritesError(f"dSprites file {path} does not exist: download dsprites_ndarray_*.npz, or use "
                            "nine.data.dsprites.sample() to generate sprites")
    try:
        with np.load(path, allow_pickle=False) as data:
            imgs, classes, values = data["imgs"], data["latents_classes"], data["latents_values"]
    except (KeyError, ValueError, OSError) as err:
        raise DSpritesError(f"dSprites file {path} cannot be read ({first_line(err)}): need keys imgs, latents_classes, "
                            "latents_values") from None
    index = np.arange(len(imgs)) if n is None else np.sort(np.random.default_rng(seed).permutation(len(imgs))[:n])
    classes, values = classes[index][:, 1:], values[index][:, 1:]
    values = values.copy()
    values[:, 0] = classes[:, 0]  # shape as 0, 1, 2 (the original stores 1, 2, 3)
    return Sprites(imgs[index][:, None].astype(np.float32), check_classes(classes), values.astype(float))
