"""The one resize + normalise step every CNN input goes through (training and inference),
and the one ImageNet mean/std constant.

    x = resize_normalize(crop, 224)        # uint8 (H, W, 3) -> float32 (3, 224, 224)
    t = normalize_tiles(tiles)             # uint8 (K, S, S, 3) -> float32 (K, 3, S, S), no resize
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def resize_rgb(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) RGB (or grey, or RGBA) -> uint8 (size, size, 3): PIL bilinear resize,
    the first step of `resize_normalize`."""
    from PIL import Image

    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB crop, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr[..., :3], dtype=np.uint8)
    if arr.shape[0] != size or arr.shape[1] != size:
        arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.BILINEAR))
    return arr


def resize_normalize(
    img: np.ndarray,
    size: int,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 (3, size, size): PIL bilinear resize, /255, normalise."""
    x = resize_rgb(img, size).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize_normalize_batch(
    crops: Sequence[np.ndarray],
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Crops -> float32 (N, 3, size, size): `resize_normalize`'s arithmetic (/255, -mean,
    /std, float32) on the whole batch, in NHWC memory (the returned array is a transposed
    view: the channels-last layout a CNN runs in on the CPU, without two copies)."""
    if len(crops) == 0:
        return np.zeros((0, 3, size, size), np.float32)
    x = np.stack([resize_rgb(c, size) for c in crops]).astype(np.float32) / np.float32(255.0)
    x -= np.asarray(mean, np.float32)
    x /= np.asarray(std, np.float32)
    return x.transpose(0, 3, 1, 2)


def normalize_tiles(
    tiles: np.ndarray,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> np.ndarray:
    """Native-pixel tiles uint8 (K, S, S, 3) -> float32 (K, 3, S, S); never resampled."""
    t = np.asarray(tiles)
    if t.ndim != 4 or t.shape[3] != 3 or t.shape[1] != t.shape[2]:
        raise ValueError(f"expected (K, S, S, 3) tiles, got shape {t.shape}")
    x = t.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


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
