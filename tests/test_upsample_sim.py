"""Upsampling simulators: shapes, dtypes, determinism, and that each leaves its trace."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.synth.upsample_sim import (
    FACTORS,
    UPSAMPLERS,
    UpsampleRecipe,
    apply_recipe,
    apply_trace,
    downscale,
    random_recipe,
    simulate_trace,
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


def test_trace_keeps_fine_detail_and_adds_a_periodic_residue() -> None:
    """A plain down-up removes the image's own high frequencies; the trace simulator keeps
    them (it only adds up_recipe - up_reference), and its residue is 2-periodic for a
    nearest recipe."""
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = (128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0))[..., None].repeat(3, axis=2)
    img = np.clip(smooth + _noise().astype(float) * 0.1 - 12.8, 0, 255).astype(np.uint8)
    r = UpsampleRecipe("nearest", 2, "area")
    down_up = apply_recipe(img, r).astype(float)
    trace = apply_trace(img, r).astype(float)

    def hp(a: np.ndarray) -> np.ndarray:  # 4-neighbour Laplacian: fine detail
        return a - (np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1)) / 4

    e_img, e_du, e_tr = (
        np.abs(hp(a.astype(float))[4:-4, 4:-4]).mean() for a in (img, down_up, trace)
    )
    assert e_du < 0.8 * e_img  # down-up smooths
    assert e_tr > 0.9 * e_img  # the trace keeps the detail
    assert np.abs(trace - img).mean() > 0.5  # and adds something


def test_trace_simulator_shapes_dtype_seed() -> None:
    img = _noise((48, 64, 3))
    a = simulate_trace(img, np.random.default_rng(3))
    b = simulate_trace(img, np.random.default_rng(3))
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
