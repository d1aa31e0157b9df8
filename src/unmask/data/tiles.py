"""Native-pixel tiles: the preprocessing that never resamples.

Generators leave their traces in single pixels (the periodic pattern of an upsampling layer);
any resize smears them away. A `TileSpec` says how to cut fixed-size tiles out of the
*decoded original*, at integer coordinates only, inside and around a face box (or over the
whole image when there is no face):

    region  = the face's square crop box (as `unmask prepare` records it), clipped to the image
    origins = an even grid of `count` tile origins over the region, snapped down to multiples
              of `align` (8 = the JPEG block grid, so every tile sees whole 8x8 blocks)
    tile    = image[y:y+size, x:x+size], pixel for pixel

An image (or region) smaller than a tile is extended by mirror reflection (period 2n, so
any size works), never enlarged. `cut_tiles(..., rng=...)` draws origins uniformly instead
of the grid, for training; without `rng` the origins are deterministic, so `detect`, `eval`
and `serve` cut the same tiles from the same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class TileSpec:
    size: int = 64  # tile side, original pixels
    count: int = 8  # tiles per face (or per image when region == "image")
    region: Literal["face", "image"] = "face"
    align: int = 8  # tile origins are multiples of this (1 = anywhere)

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 512:
            raise ValueError(f"tile size must be in [16, 512], got {self.size}")
        if not 1 <= self.count <= 64:
            raise ValueError(f"tile count must be in [1, 64], got {self.count}")
        if self.region not in ("face", "image"):
            raise ValueError(f"tile region must be 'face' or 'image', got {self.region!r}")
        if not 1 <= self.align <= 64:
            raise ValueError(f"tile align must be in [1, 64], got {self.align}")


def reflect_indices(start: int, length: int, n: int) -> np.ndarray:
    """Indices start..start+length-1 folded into [0, n) by mirror reflection (edge pixel
    repeated: ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...), so any window of any image exists."""
    if n <= 0:
        raise ValueError("empty axis")
    idx = np.arange(start, start + length) % (2 * n)
    return np.where(idx < n, idx, 2 * n - 1 - idx)


def _region(box: Box | None, width: int, height: int, spec: TileSpec) -> Box:
    if box is None or spec.region == "image":
        return 0, 0, width, height
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:  # box entirely outside the image: use the whole image
        return 0, 0, width, height
    return x0, y0, x1, y1


def _axis_origins(lo: int, hi: int, size: int, k: int, align: int, n: int) -> list[int]:
    """k evenly spaced tile starts covering [lo, hi) (centred when the span is short)."""
    span = hi - lo
    if span <= size:
        # a short region: centre the tile on it but stay inside the image; an image smaller
        # than a tile starts at 0 (the image intact in the corner, reflections after it)
        start = min(max(lo + (span - size) // 2, 0), n - size) if n >= size else 0
        return [start] * k
    last = hi - size
    starts = (
        [lo + round(i * (last - lo) / max(k - 1, 1)) for i in range(k)]
        if k > 1
        else [lo + (last - lo) // 2]
    )
    out = []
    for s in starts:
        a = (s // align) * align
        if a < lo and a + align <= last:
            a += align
        out.append(int(a))
    return out


def tile_origins(box: Box | None, width: int, height: int, spec: TileSpec) -> list[tuple[int, int]]:
    """The deterministic (x, y) origins `cut_tiles` uses without an rng."""
    x0, y0, x1, y1 = _region(box, width, height, spec)
    cols = math.ceil(math.sqrt(spec.count))
    rows = math.ceil(spec.count / cols)
    xs = _axis_origins(x0, x1, spec.size, cols, spec.align, width)
    ys = _axis_origins(y0, y1, spec.size, rows, spec.align, height)
    grid = [(x, y) for y in ys for x in xs]
    # more grid cells than tiles: keep an even subset, centre-out order does not matter
    pick = np.linspace(0, len(grid) - 1, spec.count).round().astype(int)
    return [grid[i] for i in pick]


def random_origins(
    box: Box | None, width: int, height: int, spec: TileSpec, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Uniform origins inside the region (snapped to the grid), for training."""
    x0, y0, x1, y1 = _region(box, width, height, spec)
    out = []
    for _ in range(spec.count):
        xy = []
        for lo, hi, n in ((x0, x1, width), (y0, y1, height)):
            if hi - lo <= spec.size:
                xy.append(_axis_origins(lo, hi, spec.size, 1, spec.align, n)[0])
                continue
            s = int(rng.integers(lo, hi - spec.size + 1))
            a = (s // spec.align) * spec.align
            xy.append(a if a >= lo else s)
        out.append((xy[0], xy[1]))
    return out


def cut_tile(image: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    """image[y:y+size, x:x+size] exactly; parts outside the image are mirror-reflected."""
    h, w = image.shape[:2]
    if x >= 0 and y >= 0 and x + size <= w and y + size <= h:
        return np.ascontiguousarray(image[y : y + size, x : x + size])
    ys = reflect_indices(y, size, h)
    xs = reflect_indices(x, size, w)
    return np.ascontiguousarray(image[ys[:, None], xs[None, :]])


def cut_tiles(
    image: np.ndarray,
    box: Box | None,
    spec: TileSpec,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(count, size, size, C) tiles of `image` (H, W, C), uint8 in -> uint8 out."""
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    h, w = image.shape[:2]
    origins = tile_origins(box, w, h, spec) if rng is None else random_origins(box, w, h, spec, rng)
    return np.stack([cut_tile(image, x, y, spec.size) for x, y in origins])
