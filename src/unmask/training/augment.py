"""Image ops shared by training and inference: augmentation (train only) and the one
resize + normalise step (`unmask.data.normalize`) that inference repeats exactly.

Augmentations work on uint8 RGB crops (H, W, 3) with PIL, in this order: resize down-up,
Gaussian blur, JPEG re-compression, colour jitter, horizontal flip. Each is switched on by
its probability/strength in `AugmentConfig` (all off except the flip by default).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

# One resize/normalise step and one ImageNet constant for training and inference.
from unmask.data.normalize import (  # noqa: F401  (re-used names)
    IMAGENET_MEAN,
    IMAGENET_STD,
    landmarks_array,
    resize_normalize,
)
from unmask.training.config import AugmentConfig


def augment_crop(
    img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """One random augmentation of a uint8 RGB crop. Returns (image, flipped) so that
    landmarks can be mirrored too. The input array is not modified."""
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8))
    w, h = pil.size
    if cfg.resize_prob > 0 and rng.random() < cfg.resize_prob:
        lo, hi = cfg.resize_scale
        s = float(rng.uniform(lo, hi))
        small = (max(8, round(w * s)), max(8, round(h * s)))
        pil = pil.resize(small, Image.BILINEAR).resize((w, h), Image.BILINEAR)
    if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
        lo, hi = cfg.blur_sigma
        pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(lo, hi))))
    if cfg.jpeg_prob > 0 and rng.random() < cfg.jpeg_prob:
        lo, hi = cfg.jpeg_quality
        pil = _jpeg(pil, int(rng.integers(lo, hi + 1)))
    if cfg.color_jitter > 0:
        s = cfg.color_jitter
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            pil = enhancer(pil).enhance(float(rng.uniform(max(0.0, 1 - s), 1 + s)))
    flipped = bool(cfg.hflip > 0 and rng.random() < cfg.hflip)
    if flipped:
        pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(pil, dtype=np.uint8), flipped


def _jpeg(pil: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def jpeg_reencode(img: np.ndarray, quality: int) -> np.ndarray:
    """A uint8 RGB image JPEG-encoded at `quality` and decoded again (a new array)."""
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8))
    return np.asarray(_jpeg(pil, int(quality)), dtype=np.uint8)


def flip_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Mirror normalised landmarks horizontally (x -> 1 - x); all-zero (missing) stay zero.
    Point indices are not permuted (the left eye's points keep their index)."""
    out = np.array(landmarks, dtype=np.float32, copy=True)
    if np.any(out):
        out[:, 0] = 1.0 - out[:, 0]
    return out
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.ndim != 2 or lm.shape[0] != 468 or lm.shape[1] not in (2, 3):
        raise ValueError(f"landmarks must be (468, 2|3), got shape {lm.shape}")
    out[:, : lm.shape[1]] = np.nan_to_num(lm)
    return out
