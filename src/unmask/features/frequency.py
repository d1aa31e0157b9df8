"""Frequency features of face crops (pure NumPy/SciPy, no torch).

Two families, after the papers the classical detectors follow:

* Durall et al. 2020, "Unmasking DeepFakes with simple Features": the log power spectrum
  (`power_spectrum`) reduced to a 1-D radial profile by `azimuthal_average`.
* Frank et al. 2020, "Leveraging Frequency Analysis for Deep Fake Image Recognition": the
  2-D orthonormal DCT-II (`dct2`), log-scaled (`log_dct`) and standardised per coefficient
  (`CoefficientStandardizer`, fitted on training data only).

Every function works on a single (H, W) image or a batch (..., H, W): transforms act on the
last two axes. Images are converted to grayscale (`to_gray`, ITU-R BT.601 luma) and resized
to one fixed size (`resize_gray`) before features, so a feature vector never depends on the
input's resolution.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

# ITU-R BT.601 luma weights (what PIL's "L" mode uses).
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float64)
LOG_EPS = 1e-12  # Frank et al.'s epsilon in log(|DCT| + eps)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) RGB(A) or (H, W) -> (H, W) float64 luma on the input's scale (0..255)."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float64)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        return a[..., :3].astype(np.float64) @ GRAY_WEIGHTS
    if a.ndim == 3 and a.shape[-1] == 1:
        return a[..., 0].astype(np.float64)
    raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {a.shape}")


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D float image to (size, size) with PIL's bilinear filter (antialiased when
    shrinking); returns the input unchanged when it already has that size."""
    g = np.asarray(gray, dtype=np.float64)
    if g.shape == (size, size):
        return g
    from PIL import Image

    im = Image.fromarray(g.astype(np.float32), mode="F")
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64)


def dct2(x: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT-II over the last two axes (energy preserving: Parseval holds)."""
    from scipy.fft import dctn

    return dctn(np.asarray(x, dtype=np.float64), type=2, norm="ortho", axes=(-2, -1))


def log_dct(x: np.ndarray, eps: float = LOG_EPS) -> np.ndarray:
    """log(|DCT-II(x)| + eps): the Frank et al. input representation."""
    return np.log(np.abs(dct2(x)) + eps)


def power_spectrum(x: np.ndarray, eps: float = LOG_EPS) -> np.ndarray:
    """log(|FFT2(x)|^2 + eps) over the last two axes, fftshift-ed so that the DC term sits
    at (H // 2, W // 2)."""
    f = np.fft.fft2(np.asarray(x, dtype=np.float64), axes=(-2, -1))
    f = np.fft.fftshift(f, axes=(-2, -1))
    return np.log(np.abs(f) ** 2 + eps)


@functools.lru_cache(maxsize=32)
def _radius_bins_cached(h: int, w: int, center: tuple[float, float] | None) -> np.ndarray:
    cy, cx = (h // 2, w // 2) if center is None else center
    yy, xx = np.indices((h, w), dtype=np.float64)
    r = np.rint(np.hypot(yy - cy, xx - cx)).astype(np.int64)
    r.flags.writeable = False
    return r


def _radius_bins(h: int, w: int, center: tuple[float, float] | None) -> np.ndarray:
    """Ring index (distance from the centre rounded to whole pixels) of every pixel."""
    return _radius_bins_cached(h, w, None if center is None else tuple(map(float, center)))


def azimuthal_average(
    spectrum: np.ndarray, center: tuple[float, float] | None = None
) -> np.ndarray:
    """Mean of `spectrum` over rings of equal distance from the centre: the 1-D radial profile.

    The centre defaults to (H // 2, W // 2), the DC position after `fftshift`. Ring k holds the
    pixels whose distance r from the centre rounds to k (bins 1 px wide), so the profile has
    round(max r) + 1 entries, corners included. Works for any (H, W), square or not, and for
    batches (..., H, W) -> (..., K). Every ring up to the largest radius holds at least one
    pixel, so no entry is empty.
    """
    s = np.asarray(spectrum, dtype=np.float64)
    if s.ndim < 2:
        raise ValueError(f"expected (..., H, W), got shape {s.shape}")
    h, w = s.shape[-2:]
    bins = _radius_bins(h, w, center).ravel()
    counts = np.bincount(bins)
    flat = s.reshape(-1, h * w)
    # Sum per ring for every image in the batch at once: (B, HW) @ one-hot (HW, K).
    k = counts.size
    sums = np.zeros((flat.shape[0], k))
    for i in range(flat.shape[0]):
        sums[i] = np.bincount(bins, weights=flat[i], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = sums / counts
    return prof.reshape(*s.shape[:-2], k)


def profile_length(h: int, w: int | None = None) -> int:
    """Length of `azimuthal_average` for an (h, w) spectrum with the default centre."""
    w = h if w is None else w
    return int(_radius_bins(h, w, None).max()) + 1


# --- per-image feature vectors used by the classical detectors --------------------------
FEATURE_KINDS: tuple[str, ...] = ("spectrum", "dct")


def image_features(image: np.ndarray, kind: str, size: int) -> np.ndarray:
    """One image (RGB uint8 or 2-D) -> float32 feature vector.

    kind "spectrum": azimuthal average of the log power spectrum (length
    `profile_length(size)`); kind "dct": flattened log-DCT (size * size).
    """
    g = resize_gray(to_gray(image), size)
    if kind == "spectrum":
        return azimuthal_average(power_spectrum(g)).astype(np.float32)
    if kind == "dct":
        return log_dct(g).astype(np.float32).ravel()
    raise ValueError(f"unknown feature kind {kind!r}; valid: {', '.join(FEATURE_KINDS)}")


def feature_dim(kind: str, size: int) -> int:
    if kind == "spectrum":
        return profile_length(size)
    if kind == "dct":
        return size * size
    raise ValueError(f"unknown feature kind {kind!r}; valid: {', '.join(FEATURE_KINDS)}")


def batch_features(images: Any, kind: str, size: int) -> np.ndarray:
    """A batch (N, H, W, 3) array or a list of images -> (N, D) float32."""
    out = np.empty((len(images), feature_dim(kind, size)), dtype=np.float32)
    for i, im in enumerate(images):
        out[i] = image_features(im, kind, size)
    return out


class CoefficientStandardizer:
    """Per-coefficient standardisation: (x - mean) / std, statistics over axis 0.

    Fit on training data only. Coefficients with zero spread get std 1 (they are only
    centred). Works on any trailing shape ((N, D) vectors or (N, H, W) DCT maps). The fitted
    arrays are `mean_` and `scale_` (float64); `to_arrays`/`from_arrays` export and restore
    them (e.g. through safetensors). Duck-types the scikit-learn transformer API so it can
    sit in a Pipeline.
    """

    def __init__(self, min_std: float = 1e-8) -> None:
        self.min_std = min_std

    def fit(self, x: np.ndarray, y: Any = None) -> CoefficientStandardizer:
        a = np.asarray(x, dtype=np.float64)
        if a.shape[0] < 1:
            raise ValueError("cannot fit a standardizer on zero samples")
        if not np.all(np.isfinite(a)):
            raise ValueError("features contain NaN or infinite values")
        self.mean_ = a.mean(axis=0)
        std = a.std(axis=0)
        self.scale_ = np.where(std > self.min_std, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise RuntimeError("CoefficientStandardizer is not fitted")
        a = np.asarray(x, dtype=np.float64)
        if a.shape[1:] != self.mean_.shape:
            raise ValueError(f"expected samples of shape {self.mean_.shape}, got {a.shape[1:]}")
        return (a - self.mean_) / self.scale_

    def fit_transform(self, x: np.ndarray, y: Any = None) -> np.ndarray:
        return self.fit(x, y).transform(x)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.scale_ + self.mean_

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": np.ascontiguousarray(self.mean_),
            "scale": np.ascontiguousarray(self.scale_),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CoefficientStandardizer:
        obj = cls()
        obj.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        obj.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        return obj

    # scikit-learn estimator API (so Pipeline, clone and get_params work)
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"min_std": self.min_std}

    def set_params(self, **params: Any) -> CoefficientStandardizer:
        for k, v in params.items():
            setattr(self, k, v)
        return self
