"""Native-pixel tiles never resample: every tile pixel is an original pixel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unmask.data.tiles import TileSpec, cut_tiles, reflect_indices, tile_origins


def coded_image(h: int, w: int) -> np.ndarray:
    """Each pixel encodes its own coordinates, so a tile tells where it came from."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy % 256, xx % 256, (yy // 256) * 16 + (xx // 256)], -1).astype(np.uint8)


def test_tiles_are_bit_identical_crops():
    img = coded_image(300, 400)
    spec = TileSpec(size=64, count=6, align=8)
    box = (100, 50, 260, 210)
    tiles = cut_tiles(img, box, spec)
    assert tiles.shape == (6, 64, 64, 3) and tiles.dtype == np.uint8
    for tile, (x, y) in zip(tiles, tile_origins(box, 400, 300, spec), strict=True):
        assert x % 8 == 0 and y % 8 == 0
        np.testing.assert_array_equal(tile, img[y : y + 64, x : x + 64])
        # inside the face box (the region is large enough here)
        assert x >= 96 and x + 64 <= 264 and y >= 48 and y + 64 <= 216


def test_small_image_is_reflected_not_enlarged():
    img = coded_image(20, 30)
    tiles = cut_tiles(img, None, TileSpec(size=64, count=1, region="image"))
    t = tiles[0]
    # every value in the tile is one of the image's own pixels: no interpolation
    originals = {tuple(p) for p in img.reshape(-1, 3)}
    assert {tuple(p) for p in t.reshape(-1, 3)} <= originals
    # and the top-left 20x30 block is the image itself, pixel for pixel, after reflection
    ys, xs = reflect_indices(0, 64, 20), reflect_indices(0, 64, 30)
    np.testing.assert_array_equal(t, img[ys[:, None], xs[None, :]])


def test_random_origins_stay_in_region_and_on_grid():
    img = coded_image(256, 256)
    spec = TileSpec(size=32, count=16, align=8)
    tiles = cut_tiles(img, (64, 64, 192, 192), spec, rng=np.random.default_rng(0))
    for t in tiles:
        y, x = int(t[0, 0, 0]), int(t[0, 0, 1])
        assert 64 <= x <= 160 and 64 <= y <= 160
        assert x % 8 == 0 and y % 8 == 0


def test_deterministic_without_rng():
    img = coded_image(120, 90)
    spec = TileSpec(size=48, count=4)
    np.testing.assert_array_equal(
        cut_tiles(img, (10, 10, 80, 100), spec), cut_tiles(img, (10, 10, 80, 100), spec)
    )


@pytest.mark.parametrize("bad", [dict(size=8), dict(count=0), dict(region="x"), dict(align=0)])
def test_spec_validation(bad):
    with pytest.raises(ValueError):
        TileSpec(**bad)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 200),
    w=st.integers(1, 200),
    size=st.integers(16, 96),
    count=st.integers(1, 9),
    box=st.tuples(
        st.integers(-50, 250), st.integers(-50, 250), st.integers(1, 120), st.integers(1, 120)
    ),
)
def test_any_geometry_gives_original_pixels(h, w, size, count, box):
    img = coded_image(h, w)
    x0, y0, bw, bh = box
    tiles = cut_tiles(img, (x0, y0, x0 + bw, y0 + bh), TileSpec(size=size, count=count))
    assert tiles.shape == (count, size, size, 3)
    originals = {tuple(p) for p in img.reshape(-1, 3)}
    assert {tuple(p) for p in tiles.reshape(-1, 3)} <= originals
