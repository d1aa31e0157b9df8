"""Simulated upsampling fakes from real pixels, for the native-pixel artifact detector.

A generator paints its last feature maps at a fraction of the output size and upsamples them
(nearest, bilinear, transposed convolution, ...); the upsampler leaves a periodic trace in
single pixels. These simulators put such a trace into any real image, so that a detector can
learn *upsampling* rather than the look of the few generators in its training set (AutoGAN,
Zhang et al. 2019; NPR, Tan et al. 2024), and a user with only real photos can train one:

    down   the image shrunk by `factor` (2 or 4): area average or plain subsampling
    up     back to the input size: nearest, bilinear, bicubic, zero insertion (+ a random
           3x3 interpolation filter) or a transposed convolution with a random kernel
    post   optionally a random 3x3 filter near identity (a generator's last conv layer)

`simulate_upsampling(image, rng)` draws one recipe and applies it; `apply_recipe` applies a
given one. uint8 (H, W, 3) in -> uint8 (H, W, 3) out, same shape; the same seed gives the
same image. Rows/columns beyond the largest multiple of `factor` are left as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UPSAMPLERS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "zero", "transposed")
DOWNSAMPLERS: tuple[str, ...] = ("area", "subsample")
FACTORS: tuple[int, ...] = (2, 4)


@dataclass(frozen=True)
class UpsampleRecipe:
    upsampler: str = "nearest"
    factor: int = 2
    downsampler: str = "area"
    kernel: tuple[float, ...] = ()  # transposed/zero: (k*k) interpolation kernel, row-major
    post_filter: tuple[float, ...] = ()  # 9 weights of a 3x3 filter, or () for none

    def __post_init__(self) -> None:
        if self.upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {self.upsampler!r}")
        if self.downsampler not in DOWNSAMPLERS:
            raise ValueError(f"downsampler must be one of {DOWNSAMPLERS}")
        if self.factor not in (2, 3, 4, 8):
            raise ValueError(f"factor must be 2, 3, 4 or 8, got {self.factor}")
        if self.post_filter and len(self.post_filter) != 9:
            raise ValueError("post_filter needs 9 weights (3x3)")


def downscale(image: np.ndarray, factor: int, method: str = "area") -> np.ndarray:
    """(H, W, C) float -> (H//f, W//f, C) float; the input is cut to multiples of f."""
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    x = image[:h, :w]
    if method == "subsample":
        return x[::factor, ::factor].copy()
    return x.reshape(h // factor, factor, w // factor, factor, -1).mean(axis=(1, 3))


def _conv2d_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Per-channel 2-D correlation with reflect padding (kernel odd or even, output same size)."""
    kh, kw = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    pad = ((top, kh - 1 - top), (left, kw - 1 - left), (0, 0))
    xp = np.pad(x, pad, mode="reflect")
    out = np.zeros_like(x)
    h, w = x.shape[:2]
    for i in range(kh):
        for j in range(kw):
            if kernel[i, j] != 0:
                out += kernel[i, j] * xp[i : i + h, j : j + w]
    return out


def _zero_insert(small: np.ndarray, factor: int) -> np.ndarray:
    h, w, c = small.shape
    out = np.zeros((h * factor, w * factor, c), dtype=small.dtype)
    out[::factor, ::factor] = small
    return out


def _transposed_conv(small: np.ndarray, factor: int, kernel: np.ndarray) -> np.ndarray:
    """Transposed convolution with stride `factor`: every input pixel adds `kernel` times
    its value to the output, the kernel's origin at (f*i - c, f*j - c), c = (k - f) // 2 for
    an even kernel (k = f: nearest with a unit kernel) and (k - 1) // 2 for an odd one. The
    input is reflect-padded first so that the borders get full sums."""
    k = kernel.shape[0]
    c = (k - 1) // 2 if k % 2 else (k - factor) // 2
    m = k // factor + 1
    h, w = small.shape[:2]
    z = _zero_insert(np.pad(small, ((m, m), (m, m), (0, 0)), mode="reflect"), factor)
    out = np.zeros_like(z)
    for i in range(k):
        for j in range(k):
            if kernel[i, j] != 0:  # z shifted by (i - c, j - c): out[p] += K[i, j] z[p - i + c]
                out += kernel[i, j] * np.roll(z, (i - c, j - c), axis=(0, 1))
    o = m * factor
    return out[o : o + h * factor, o : o + w * factor]


def _phase_normalise(kernel: np.ndarray, factor: int) -> np.ndarray:
    """Scale a zero-insertion kernel so every output phase has unit gain (DC kept): the
    taps that land on phase (a, b) are kernel[a::f, b::f] (up to the kernel's offset)."""
    k = kernel.copy()
    for a in range(factor):
        for b in range(factor):
            s = k[a::factor, b::factor].sum()
            if abs(s) > 1e-6:
                k[a::factor, b::factor] /= s
    return k


def upscale(small: np.ndarray, factor: int, method: str, kernel: np.ndarray | None = None):
    """(h, w, C) float -> (h*f, w*f, C) float with the named upsampler."""
    if method == "nearest":
        return np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)
    if method in ("bilinear", "bicubic"):
        import torch
        from torch.nn import functional as F

        t = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))[None].float()
        up = F.interpolate(t, scale_factor=factor, mode=method, align_corners=False)
        return up[0].numpy().transpose(1, 2, 0).astype(np.float64)
    if method in ("zero", "transposed"):
        if kernel is None:
            raise ValueError(f"{method} upsampling needs a kernel")
        return _transposed_conv(small, factor, kernel)
    raise ValueError(f"unknown upsampler {method!r}")


def random_recipe(rng: np.random.Generator) -> UpsampleRecipe:
    """One upsampling recipe drawn uniformly over upsampler, factor, down-sampler and
    post-filter (half the recipes get one)."""
    up = UPSAMPLERS[int(rng.integers(len(UPSAMPLERS)))]
    factor = FACTORS[int(rng.integers(len(FACTORS)))]
    down = DOWNSAMPLERS[int(rng.integers(len(DOWNSAMPLERS)))]
    kernel: tuple[float, ...] = ()
    if up == "zero":  # zero insertion + a random (2f-1)^2 smoothing filter (AutoGAN)
        k = 2 * factor - 1
        tri = 1.0 - np.abs(np.arange(k) - (k - 1) / 2) / factor
        base = np.outer(tri, tri) * (1.0 + 0.3 * rng.standard_normal((k, k)))
        kernel = tuple(_phase_normalise(np.clip(base, 0.0, None), factor).ravel())
    elif up == "transposed":  # a learned kernel: random, any sign, size f or 2f
        k = factor * int(rng.integers(1, 3))
        base = 1.0 + 0.5 * rng.standard_normal((k, k))
        kernel = tuple(_phase_normalise(base, factor).ravel())
    post: tuple[float, ...] = ()
    if rng.random() < 0.5:
        f = np.zeros((3, 3))
        f[1, 1] = 1.0
        f += 0.15 * rng.standard_normal((3, 3))
        f /= f.sum() if abs(f.sum()) > 0.2 else 1.0
        post = tuple(f.ravel())
    return UpsampleRecipe(up, factor, down, kernel, post)


def _down_up(image: np.ndarray, recipe: UpsampleRecipe):
    """(x, small, up, h, w): the image as float, its down-scaled copy, that copy up-scaled by
    the recipe (and post-filtered), and the multiple-of-factor extent they cover; None when
    the image is smaller than one factor."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) uint8 image, got {image.dtype} {image.shape}")
    f = recipe.factor
    h, w = (image.shape[0] // f) * f, (image.shape[1] // f) * f
    if h == 0 or w == 0:
        return None
    x = image.astype(np.float64)
    small = downscale(x, f, recipe.downsampler)
    kernel = None
    if recipe.kernel:
        k = int(round(len(recipe.kernel) ** 0.5))
        kernel = np.asarray(recipe.kernel, dtype=np.float64).reshape(k, k)
    up = upscale(small, f, recipe.upsampler, kernel)
    if recipe.post_filter:
        up = _conv2d_same(up, np.asarray(recipe.post_filter, dtype=np.float64).reshape(3, 3))
    return x, small, up, h, w


def apply_recipe(image: np.ndarray, recipe: UpsampleRecipe) -> np.ndarray:
    """Down-scale, up-scale (and post-filter) `image` (H, W, 3) uint8; same shape out."""
    parts = _down_up(image, recipe)
    if parts is None:
        return image.copy()
    _, _, up, h, w = parts
    out = image.copy()
    out[:h, :w] = np.clip(np.rint(up), 0, 255).astype(np.uint8)
    return out


def simulate_upsampling(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` with a random upsampler's trace (see the module docstring)."""
    return apply_recipe(image, random_recipe(rng))


def apply_trace(image: np.ndarray, recipe: UpsampleRecipe, gain: float = 1.0) -> np.ndarray:
    """Add only the upsampler's *periodic trace* to `image`, keeping its own fine detail:

        out = image + gain * (up_recipe(down(image)) - up_reference(down(image)))

    with a phase-independent-as-possible reference (bicubic; bilinear when the recipe is
    bicubic). A plain down-up (`apply_recipe`) also removes high frequencies, which teaches
    "smooth = fake" - and real generators' outputs are sharp. Same shapes/dtypes as
    `apply_recipe`."""
    parts = _down_up(image, recipe)
    if parts is None:
        return image.copy()
    x, small, up, h, w = parts
    ref = upscale(small, recipe.factor, "bilinear" if recipe.upsampler == "bicubic" else "bicubic")
    out = image.copy()
    out[:h, :w] = np.clip(np.rint(x[:h, :w] + gain * (up - ref)), 0, 255).astype(np.uint8)
    return out


def simulate_trace(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` plus a random upsampler's periodic trace at a random gain in [0.5, 1.5]."""
    recipe = random_recipe(rng)
    return apply_trace(image, recipe, float(rng.uniform(0.5, 1.5)))
