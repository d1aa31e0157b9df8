"""Blended fakes from real faces: Self-Blended Images and landmark-warp face swaps.

`self_blend` follows Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images"
(CVPR 2022): a face is blended with a slightly transformed copy of itself (colour, sharpness,
scale and position jitter) inside a randomly deformed, blurred landmark-hull mask, with a
random blend ratio. The result keeps the identity but carries the blending boundary and the
statistical mismatch that face-swap detectors should learn.

`pair_blend` is a classical landmark face swap (as FaceForensics' FaceSwap): the donor face
is warped piecewise-affinely (Delaunay triangles of the landmarks) onto the target's
landmarks and pasted with Poisson blending (`cv2.seamlessClone`).

Both are pure functions of their inputs and `rng`, so the training datamodule can call
`self_blend` on the fly (`data.synth: [blend]`):

    fake, mask = self_blend(image, landmarks, rng)

`image` is an RGB uint8 array (H, W, 3); `landmarks` an (N, 2 or 3) array of points in crop
coordinates divided by the crop size (the manifest's `.npy` files, so they stay valid when the
crop is resized); `rng` a `numpy.random.Generator`. `fake` is uint8 (H, W, 3) and `mask` float32
(H, W) in [0, 1] (1 where the face comes entirely from the transformed copy), usable as a
localisation target. Label the result `edited`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# How far the mask may leave the landmark hull, as a fraction of the hull's size (max of its
# width and height). Deformation (scale/elastic) + blur are bounded by construction; the
# final mask is also clipped to the hull dilated by this much.
MAX_MASK_GROWTH = 0.12

# Face parts as MediaPipe Face Mesh (468 points) indices, for part-level blends that imitate
# partial splices (an eye, a mouth pasted from elsewhere). Eyes include their eyebrows.
# fmt: off
FACE_PARTS: dict[str, tuple[int, ...]] = {
    "right_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
                  46, 53, 52, 65, 55, 70, 63, 105, 66, 107),
    "left_eye": (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
                 276, 283, 282, 295, 285, 300, 293, 334, 296, 336),
    "nose": (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 129, 358, 49, 279, 48, 278,
             64, 294, 219, 439, 102, 331, 240, 460),
    "mouth": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39,
              40, 185),
}
# fmt: on
# Blend regions: a region is the union of its parts' hulls (each part hulled on its own).
# "face" is the whole-face SBI blend (landmark hull, sometimes without the forehead).
REGIONS: dict[str, tuple[str, ...]] = {
    "eyes": ("right_eye", "left_eye"),
    "one_eye": ("right_eye",),  # mirrored by the flip augmentation
    "nose": ("nose",),
    "mouth": ("mouth",),
    "eyes_nose": ("right_eye", "left_eye", "nose"),
    "nose_mouth": ("nose", "mouth"),
    "eyes_mouth": ("right_eye", "left_eye", "mouth"),
}
# A part's hull is grown by this fraction of the part's size before the SBI mask steps, so
# that the splice covers the skin around the feature as a hand-made one does.
PART_MARGIN = 0.25


def _check_inputs(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, int, int]:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] < 3 or lm.shape[1] < 2:
        raise ValueError(f"landmarks must be (N>=3, 2 or 3), got {lm.shape}")
    if not np.isfinite(lm[:, :2]).all():
        raise ValueError("landmarks contain NaN or inf")
    h, w = image.shape[:2]
    return lm[:, :2] * np.array([w, h], dtype=np.float64), h, w


def hull_mask(points_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 {0, 1} mask of the convex hull of pixel points (x, y) in an image of `shape`."""
    import cv2

    mask = np.zeros(shape, dtype=np.uint8)
    hull = cv2.convexHull(np.round(points_px).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask


def _hull_size(points_px: np.ndarray) -> float:
    span = points_px.max(axis=0) - points_px.min(axis=0)
    return float(max(span.max(), 8.0))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a {0, 1} mask by a disc of `radius` pixels."""
    import cv2

    if radius <= 0:
        return mask.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, k)


def _odd(x: float) -> int:
    k = max(1, int(round(x)))
    return k if k % 2 == 1 else k + 1


def _elastic(mask: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Smooth random displacement of a float mask, at most ~`amplitude` pixels."""
    import cv2

    h, w = mask.shape
    gh, gw = 6, 6  # coarse random grid, upsampled smoothly -> low-frequency wobble
    dx = cv2.resize(
        rng.uniform(-1, 1, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    dy = cv2.resize(
        rng.uniform(-1, 1, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = xs + np.clip(dx, -1, 1) * amplitude
    map_y = ys + np.clip(dy, -1, 1) * amplitude
    return cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _color_jitter(img: np.ndarray, rng: np.random.Generator, p: dict[str, Any]) -> np.ndarray:
    """One of RGB shift / hue-saturation-value / brightness-contrast (as SBI's source transform)."""
    import cv2

    kind = ["rgb_shift", "hsv", "brightness_contrast"][int(rng.integers(3))]
    x = img.astype(np.float32)
    if kind == "rgb_shift":
        shift = rng.uniform(-20, 20, 3)
        x = x + shift
        p["rgb_shift"] = [round(float(s), 2) for s in shift]
    elif kind == "hsv":
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
        dh, ds, dv = rng.uniform(-0.05, 0.05), rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)
        hsv[..., 0] = (hsv[..., 0] + dh * 180.0) % 180.0
        hsv[..., 1] = np.clip(hsv[..., 1] * (1 + ds), 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] * (1 + dv), 0, 255)
        x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        p["hsv"] = [round(float(v), 3) for v in (dh, ds, dv)]
    else:
        b, c = rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)
        x = (x - 127.5) * (1 + c) + 127.5 + b * 255
        p["brightness_contrast"] = [round(float(b), 3), round(float(c), 3)]
    return np.clip(x, 0, 255).astype(np.uint8)


def _sharpness(img: np.ndarray, rng: np.random.Generator, p: dict[str, Any]) -> np.ndarray:
    """Either down- and up-scale (softer) or unsharp-mask (sharper)."""
    import cv2

    h, w = img.shape[:2]
    if rng.random() < 0.5:
        f = float(rng.uniform(0.25, 0.8))
        small = cv2.resize(
            img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
        )
        p["downscale"] = round(f, 3)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = float(rng.uniform(0.2, 0.5))
    blur = cv2.GaussianBlur(img, (0, 0), 1.0)
    p["sharpen"] = round(alpha, 3)
    return cv2.addWeighted(img, 1 + alpha, blur, -alpha, 0)


def _affine_jitter(img: np.ndarray, rng: np.random.Generator, p: dict[str, Any]) -> np.ndarray:
    """Small scale and translation of the source copy around the image centre."""
    import cv2

    h, w = img.shape[:2]
    s = float(rng.uniform(0.95, 1 / 0.95))
    tx, ty = float(rng.uniform(-0.03, 0.03) * w), float(rng.uniform(-0.015, 0.015) * h)
    m = np.array([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]], dtype=np.float64)
    p["scale"], p["translate"] = round(s, 4), [round(tx / w, 4), round(ty / h, 4)]
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def region_mask(
    landmarks_px: np.ndarray, shape: tuple[int, int], region: str
) -> tuple[np.ndarray, float]:
    """uint8 {0, 1} mask of a part region (`REGIONS`): each part's landmark hull grown by
    `PART_MARGIN` of that part's size, united. Returns (mask, size of the region in px)."""
    if region not in REGIONS:
        raise ValueError(f"unknown blend region {region!r}; valid: {', '.join(REGIONS)}")
    if len(landmarks_px) != 468:
        raise ValueError(f"part regions need the 468 face-mesh landmarks, got {len(landmarks_px)}")
    mask = np.zeros(shape, dtype=np.uint8)
    all_pts = []
    for part in REGIONS[region]:
        pts = landmarks_px[list(FACE_PARTS[part])]
        grown = dilate(hull_mask(pts, shape), int(round(PART_MARGIN * _hull_size(pts))))
        mask = np.maximum(mask, grown)
        all_pts.append(pts)
    return mask, _hull_size(np.concatenate(all_pts))


def choose_region(rng: np.random.Generator, part_prob: float) -> str:
    """The region "face" with probability 1 - part_prob, else a uniformly chosen part region."""
    if part_prob > 0 and rng.random() < part_prob:
        names = list(REGIONS)
        return names[int(rng.integers(len(names)))]
    return "face"


def self_blend(
    image: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    return_params: bool = False,
    region: str = "face",
):
    """A Self-Blended Image: `(fake uint8 (H,W,3), mask float32 (H,W) in [0,1])`.

    `region` "face" is SBI's whole-face blend; a part region (`REGIONS`: eyes, nose, mouth
    and combinations; needs the 468 face-mesh landmarks) blends only there, and always
    transforms the pasted copy, so every pixel outside the region's limit
    (`region_mask` dilated by MAX_MASK_GROWTH of its size) is left untouched.
    With `return_params=True` a third element, a JSON-serialisable dict of the random choices,
    is returned too (what `unmask synth blend` stores in `synth_params`)."""
    import cv2

    pts, h, w = _check_inputs(image, landmarks)
    p: dict[str, Any] = {"kind": "self_blend", "region": region}
    if region != "face":
        base, size = region_mask(pts, (h, w), region)
        p["hull"] = "parts"
    elif rng.random() < 0.25:  # lower face only (SBI: dlib-68 without the forehead points)
        cut = np.quantile(pts[:, 1], 0.15)
        pts = pts[pts[:, 1] >= cut]
        p["hull"] = "lower"
    else:
        p["hull"] = "full"
    if region == "face":
        size = _hull_size(pts)
        base = hull_mask(pts, (h, w))
    if region != "face":
        ys, xs = np.nonzero(base)
        pts = np.stack([xs, ys], axis=1).astype(np.float64)  # centroid for the mask scale

    # Source = transformed copy (or transform the target instead, as SBI does half the time;
    # part splices always transform the pasted copy so that the rest of the face is intact).
    target, source = image.copy(), image.copy()
    which = "source" if region != "face" or rng.random() < 0.5 else "target"
    p["transformed"] = which
    jittered = _sharpness(_color_jitter(source if which == "source" else target, rng, p), rng, p)
    if which == "source":
        source = jittered
    else:
        target = jittered
    source = _affine_jitter(source, rng, p)

    # Mask: mild scale about the hull centroid, elastic wobble, erode-by-blur, soft edge.
    mask = base.astype(np.float32)
    ms = float(rng.uniform(0.9, 1.03))
    cx, cy = pts.mean(axis=0)
    m = np.array([[ms, 0, (1 - ms) * cx], [0, ms, (1 - ms) * cy]], dtype=np.float64)
    mask = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)
    amp = float(rng.uniform(0.0, 0.02) * size)
    mask = _elastic(mask, rng, amp)
    k1 = _odd(rng.uniform(0.02, 0.1) * size)
    mask = cv2.GaussianBlur(mask, (k1, k1), 0)
    mask = (mask >= mask.max() - 1e-6).astype(np.float32) if mask.max() > 0 else mask  # erode
    k2 = _odd(rng.uniform(0.02, 0.1) * size)
    mask = cv2.GaussianBlur(mask, (k2, k2), 0)
    if mask.max() > 0:
        mask = mask / mask.max()
    limit = dilate(base, int(np.ceil(MAX_MASK_GROWTH * size))).astype(np.float32)
    mask = mask * limit
    ratio = float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    mask = (mask * ratio).astype(np.float32)
    p.update(mask_scale=round(ms, 4), elastic_px=round(amp, 2), blur=[k1, k2], ratio=ratio)

    m3 = mask[..., None]
    fake = source.astype(np.float32) * m3 + target.astype(np.float32) * (1 - m3)
    fake = np.clip(np.round(fake), 0, 255).astype(np.uint8)
    return (fake, mask, p) if return_params else (fake, mask)


def _delaunay(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import Delaunay

    return Delaunay(points, qhull_options="QJ").simplices


def piecewise_affine_warp(
    donor: np.ndarray, donor_pts: np.ndarray, target_pts: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Warp `donor` so that `donor_pts` land on `target_pts` (pixel (x, y)), triangle by
    Delaunay triangle of the target points. Returns (warped image of `shape`, covered mask)."""
    import cv2

    h, w = shape
    tri = _delaunay(target_pts)
    # Affine per triangle mapping target (x, y, 1) -> donor (x, y), via batched solves.
    t = np.concatenate([target_pts[tri], np.ones((len(tri), 3, 1))], axis=2)  # (T, 3, 3)
    d = donor_pts[tri]  # (T, 3, 2)
    ok = np.abs(np.linalg.det(t)) > 1e-6
    aff = np.zeros((len(tri), 3, 2))
    aff[ok] = np.linalg.solve(t[ok], d[ok])
    # Rasterise triangle ids (id + 1; 0 = outside).
    ids = np.zeros((h, w), dtype=np.int32)
    for i in np.nonzero(ok)[0]:
        cv2.fillConvexPoly(ids, np.round(target_pts[tri[i]]).astype(np.int32), int(i) + 1)
    ys, xs = np.nonzero(ids)
    a = aff[ids[ys, xs] - 1]  # (P, 3, 2)
    src = xs[:, None] * a[:, 0] + ys[:, None] * a[:, 1] + a[:, 2]
    map_x = np.full((h, w), -1, dtype=np.float32)
    map_y = np.full((h, w), -1, dtype=np.float32)
    map_x[ys, xs], map_y[ys, xs] = src[:, 0], src[:, 1]
    warped = cv2.remap(donor, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return warped, (ids > 0).astype(np.uint8)


def pair_blend(
    target: np.ndarray,
    target_landmarks: np.ndarray,
    donor: np.ndarray,
    donor_landmarks: np.ndarray,
    rng: np.random.Generator,
    return_params: bool = False,
):
    """Landmark face swap of `donor`'s face onto `target`: `(fake uint8, mask float32 {0,1})`.

    The mask (the pasted region: target hull, slightly eroded) is where pixels were replaced."""
    import cv2

    tpts, h, w = _check_inputs(target, target_landmarks)
    dpts, _, _ = _check_inputs(donor, donor_landmarks)
    if len(tpts) != len(dpts):
        raise ValueError(f"landmark counts differ: {len(tpts)} vs {len(dpts)}")
    size = _hull_size(tpts)
    p: dict[str, Any] = {"kind": "pair_blend"}
    warped, covered = piecewise_affine_warp(donor, dpts, tpts, (h, w))
    erode = int(round(rng.uniform(0.02, 0.06) * size))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
    mask = cv2.erode(hull_mask(tpts, (h, w)) * covered, k)
    mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 0, 0, 0, 0  # seamlessClone needs a border
    p["erode_px"] = erode
    if mask.sum() < 16:
        raise ValueError("face region too small to blend")
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    center = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
    mode = "normal"
    try:
        cloned = cv2.seamlessClone(warped, target, mask * 255, center, cv2.NORMAL_CLONE)
        # The Poisson solve runs over the mask's bounding box and nudges pixels outside the
        # mask by a few levels; keep the target there so the saved mask is exact.
        fake = np.where(mask[..., None] > 0, cloned, target)
    except cv2.error:  # degenerate geometry: fall back to a feathered alpha blend
        mode = "alpha"
        soft = cv2.GaussianBlur(mask.astype(np.float32), (_odd(0.05 * size),) * 2, 0)[..., None]
        fake = np.clip(warped * soft + target * (1 - soft), 0, 255).astype(np.uint8)
    p["clone"] = mode
    out_mask = mask.astype(np.float32)
    return (fake, out_mask, p) if return_params else (fake, out_mask)
