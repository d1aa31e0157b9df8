"""Frequency features against hand-made arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.features.frequency import (
    CoefficientStandardizer,
    azimuthal_average,
    batch_features,
    dct2,
    feature_dim,
    image_features,
    log_dct,
    power_spectrum,
    profile_length,
    to_gray,
)


def test_constant_image_has_all_dct_energy_at_dc():
    x = np.full((8, 8), 3.0)
    c = dct2(x)
    assert c[0, 0] == pytest.approx(3.0 * 8)  # orthonormal: DC = mean * sqrt(H*W)
    c[0, 0] = 0.0
    assert np.abs(c).max() < 1e-12


def test_single_cosine_lands_in_one_coefficient():
    h, w, ku, kv = 16, 12, 3, 5
    yy, xx = np.indices((h, w))
    x = np.cos(np.pi * (2 * yy + 1) * ku / (2 * h)) * np.cos(np.pi * (2 * xx + 1) * kv / (2 * w))
    c = dct2(x)
    peak = np.unravel_index(np.argmax(np.abs(c)), c.shape)
    assert peak == (ku, kv)
    assert c[ku, kv] == pytest.approx(np.sqrt(h * w) / 2)
    c[ku, kv] = 0.0
    assert np.abs(c).max() < 1e-10


def test_dct_is_orthonormal_parseval(rng):
    x = rng.normal(size=(3, 10, 7))
    c = dct2(x)
    np.testing.assert_allclose((c**2).sum(axis=(-2, -1)), (x**2).sum(axis=(-2, -1)))
    from scipy.fft import idctn

    np.testing.assert_allclose(idctn(c, norm="ortho", axes=(-2, -1)), x, atol=1e-12)


def test_log_dct_is_log_abs():
    x = np.zeros((4, 4))
    x[:] = 2.0
    ld = log_dct(x, eps=1e-12)
    assert ld[0, 0] == pytest.approx(np.log(8.0))
    assert ld[1, 1] == pytest.approx(np.log(1e-12), rel=1e-6)


def test_power_spectrum_dc_at_center():
    x = np.ones((6, 10))
    ps = power_spectrum(x)
    assert np.unravel_index(np.argmax(ps), ps.shape) == (3, 5)
    assert ps[3, 5] == pytest.approx(np.log(60.0**2))


def test_azimuthal_average_of_radial_image_is_its_profile():
    h, w = 21, 21
    yy, xx = np.indices((h, w))
    r = np.rint(np.hypot(yy - h // 2, xx - w // 2)).astype(int)
    g = np.sqrt(np.arange(r.max() + 1.0)) * 3 - 1  # any function of the ring index
    prof = azimuthal_average(g[r])
    np.testing.assert_allclose(prof, g)
    assert prof.shape == (profile_length(h, w),)


def test_azimuthal_average_counts_pixels_per_ring():
    # 3x3 with centre (1, 1): ring 0 = centre, ring 1 = 4 edge neighbours + 4 corners
    # (corner r = 1.414 rounds to 1).
    x = np.array([[1.0, 2.0, 1.0], [2.0, 10.0, 2.0], [1.0, 2.0, 1.0]])
    np.testing.assert_allclose(azimuthal_average(x), [10.0, 1.5])


def test_azimuthal_average_non_square_and_batch(rng):
    h, w = 8, 20
    x = rng.normal(size=(2, h, w))
    prof = azimuthal_average(x)
    # max radius: from (4, 10) to (0, 0) -> hypot(4, 10) = 10.77 -> 11 -> 12 bins
    assert prof.shape == (2, 12)
    assert np.isfinite(prof).all()
    np.testing.assert_allclose(prof[1], azimuthal_average(x[1]))
    yy, xx = np.indices((h, w))
    r = np.rint(np.hypot(yy - 4, xx - 10)).astype(int)
    expect = [x[0][r == k].mean() for k in range(12)]
    np.testing.assert_allclose(prof[0], expect)


def test_to_gray_bt601():
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 100
    np.testing.assert_allclose(to_gray(img), 29.9)
    with pytest.raises(ValueError):
        to_gray(np.zeros((2, 2, 5)))


def test_image_features_fixed_size_whatever_the_input(rng):
    a = rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for kind in ("spectrum", "dct"):
        fa, fb = image_features(a, kind, 32), image_features(b, kind, 32)
        assert fa.shape == fb.shape == (feature_dim(kind, 32),)
        assert fa.dtype == np.float32
    assert batch_features([a, b], "dct", 16).shape == (2, 256)
    with pytest.raises(ValueError, match="unknown feature kind"):
        image_features(a, "wavelet", 32)


def test_coefficient_standardizer(rng):
    x = rng.normal(loc=5.0, scale=3.0, size=(200, 4, 4))
    x[:, 0, 0] = 7.0  # constant coefficient: centred only
    st = CoefficientStandardizer().fit(x)
    z = st.transform(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    sd = z.std(axis=0)
    assert sd[0, 0] == 0.0
    sd[0, 0] = 1.0
    np.testing.assert_allclose(sd, 1.0)
    st2 = CoefficientStandardizer.from_arrays(st.to_arrays())
    np.testing.assert_array_equal(st2.transform(x), z)
    np.testing.assert_allclose(st.inverse_transform(z), x)
    # fitted on train only: test data is transformed with the training statistics
    y = x[:10] + 1.0
    np.testing.assert_allclose(st.transform(y), (y - st.mean_) / st.scale_)
    with pytest.raises(ValueError):
        st.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        CoefficientStandardizer().fit(np.array([[np.nan]]))
