"""Image ops shared by training and inference: augmentation (train only) and the one
resize + normalise step that `TorchPredictor` repeats exactly at inference time.

Augmentations work on uint8 RGB crops (H, W, 3) with PIL, in this order: resize down-up,
Gaussian blur, JPEG re-compression, colour jitter, horizontal flip. Each is switched on by
its probability/strength in `AugmentConfig` (all off except the flip by default).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from unmask.training.config import AugmentConfig

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


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
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(rng.integers(lo, hi + 1)))
        buf.seek(0)
        pil = Image.open(buf).convert("RGB")
    if cfg.color_jitter > 0:
        s = cfg.color_jitter
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            pil = enhancer(pil).enhance(float(rng.uniform(max(0.0, 1 - s), 1 + s)))
    flipped = bool(cfg.hflip > 0 and rng.random() < cfg.hflip)
    if flipped:
        pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(pil, dtype=np.uint8), flipped


def flip_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Mirror normalised landmarks horizontally (x -> 1 - x); all-zero (missing) stay zero.
    Point indices are not permuted (the left eye's points keep their index)."""
    out = np.array(landmarks, dtype=np.float32, copy=True)
    if np.any(out):
        out[:, 0] = 1.0 - out[:, 0]
    return out


def resize_normalize(
    img: np.ndarray,
    size: int,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 (3, size, size): PIL bilinear resize, /255, normalise."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB crop, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr[..., :3], dtype=np.uint8)
    if arr.shape[0] != size or arr.shape[1] != size:
        arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.BILINEAR))
    x = arr.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def landmarks_array(landmarks: np.ndarray | None) -> np.ndarray:
    """(468, 3) float32 from (468, 2|3) landmarks; zeros when None/empty (no face mesh)."""
    out = np.zeros((468, 3), dtype=np.float32)
    if landmarks is None:
        return out
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.ndim != 2 or lm.shape[0] != 468 or lm.shape[1] not in (2, 3):
        raise ValueError(f"landmarks must be (468, 2|3), got shape {lm.shape}")
    out[:, : lm.shape[1]] = np.nan_to_num(lm)
    return out
