"""Upsampling simulators: shapes, dtypes, determinism, and that each leaves its trace."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.synth.upsample_sim import (
    FACTORS,
    UPSAMPLERS,
    UpsampleRecipe,
    apply_recipe,
    downscale,
    random_recipe,
    simulate_upsampling,
    upscale,
)


def _noise(shape=(64, 64, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("up", UPSAMPLERS)
@pytest.mark.parametrize("factor", FACTORS)
def test_every_recipe_keeps_shape_and_dtype(up: str, factor: int) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):  # draw until this upsampler/factor comes up, then check it
        r = random_recipe(rng)
        if r.upsampler == up and r.factor == factor:
            break
    else:
        ones = (1.0,) * (factor * factor) if up in ("zero", "transposed") else ()
        r = UpsampleRecipe(up, factor, kernel=ones)
    img = _noise((64, 48, 3))
    out = apply_recipe(img, r)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)  # noise is never a fixed point of down-up


def test_same_seed_same_fake_and_input_untouched() -> None:
    img = _noise()
    before = img.copy()
    a = simulate_upsampling(img, np.random.default_rng(7))
    b = simulate_upsampling(img, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert np.array_equal(img, before)


def test_nearest_upsampling_is_blockwise_constant() -> None:
    img = _noise()
    out = apply_recipe(img, UpsampleRecipe("nearest", 2, "area"))
    blocks = out.reshape(32, 2, 32, 2, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()


def test_unit_kernel_transposed_conv_equals_nearest() -> None:
    """A transposed convolution with an all-ones f x f kernel is nearest upsampling."""
    small = np.random.default_rng(0).uniform(0, 255, (8, 8, 3))
    near = upscale(small, 2, "nearest")
    tconv = upscale(small, 2, "transposed", np.ones((2, 2)))
    np.testing.assert_allclose(tconv, near)


def test_downscale_area_is_block_mean() -> None:
    x = np.arange(16, dtype=np.float64).reshape(4, 4, 1)
    np.testing.assert_allclose(downscale(x, 2)[..., 0], [[2.5, 4.5], [10.5, 12.5]])


def test_odd_sizes_keep_the_border() -> None:
    img = _noise((33, 35, 3))
    out = apply_recipe(img, UpsampleRecipe("bilinear", 4))
    assert out.shape == img.shape
    assert np.array_equal(out[32:], img[32:]) and np.array_equal(out[:, 32:], img[:, 32:])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        apply_recipe(np.zeros((8, 8, 3), np.float32), UpsampleRecipe())
    with pytest.raises(ValueError):
        UpsampleRecipe("lanczos")
