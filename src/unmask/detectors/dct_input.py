"""DCT building blocks for the frequency CNNs (`resnet18-dct`, `f3net`).

Everything here is a differentiable torch op on (N, C, H, W) batches; DCT matrices are built
on the fly for the batch's size and cached per (size, device, dtype), so the modules accept
any input size. Nothing is downloaded or read from disk.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

_DCT_CACHE: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def dct_matrix(n: int, device: torch.device | str = "cpu", dtype=torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix D (n, n): `D @ x` is the DCT of column vector x, D.T inverts."""
    key = (n, str(device), dtype)
    d = _DCT_CACHE.get(key)
    if d is None:
        k = torch.arange(n, dtype=torch.float64)[:, None]
        i = torch.arange(n, dtype=torch.float64)[None, :]
        d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
        d[0] /= math.sqrt(2.0)
        d = d.to(device=device, dtype=dtype)
        if len(_DCT_CACHE) < 64:
            _DCT_CACHE[key] = d
    return d


def dct2(x: torch.Tensor) -> torch.Tensor:
    """2-D orthonormal DCT-II over the last two dimensions."""
    h, w = x.shape[-2:]
    dh = dct_matrix(h, x.device, x.dtype)
    dw = dct_matrix(w, x.device, x.dtype)
    return dh @ x @ dw.T


def idct2(c: torch.Tensor) -> torch.Tensor:
    """Inverse of `dct2`."""
    h, w = c.shape[-2:]
    dh = dct_matrix(h, c.device, c.dtype)
    dw = dct_matrix(w, c.device, c.dtype)
    return dh.T @ c @ dw


def log_dct(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """log(|DCT| + eps) of each channel: the input representation of Frank et al. (2020)."""
    return torch.log(dct2(x.float()).abs() + eps)


def resize_map(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a (C, H, W) or (H, W) per-coefficient map to `size` (no-op if equal)."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    squeeze = t.dim() == 2
    t4 = t[None, None] if squeeze else t[None]
    out = F.interpolate(t4, size=size, mode="bilinear", align_corners=False)
    return out[0, 0] if squeeze else out[0]


class LogDCTStandardize(nn.Module):
    """log-DCT of each channel, standardised per coefficient.

    `mean`/`std` are buffers of shape (C, S, S) (S = `size`), so they are part of the state
    dict: computed by the training engine on the training split (`fit_stats`) and reloaded
    with the weights. Inputs of another size use bilinearly resized statistics.
    """

    def __init__(self, channels: int = 3, size: int = 224) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, size, size))
        self.register_buffer("std", torch.ones(channels, size, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = log_dct(x)
        hw = tuple(z.shape[-2:])
        mean = resize_map(self.mean, hw)
        std = resize_map(self.std, hw)
        return ((z - mean) / std.clamp_min(1e-6)).to(x.dtype)

    @torch.no_grad()
    def fit_stats(self, batches) -> int:
        """Per-coefficient mean/std of log-DCT over an iterable of (N, C, H, W) batches.
        Batches of another size than the buffers are resized first. Returns images seen."""
        s = tuple(self.mean.shape[-2:])
        total = None
        total_sq = None
        n = 0
        for x in batches:
            x = x.to(self.mean.device)
            if tuple(x.shape[-2:]) != s:
                x = F.interpolate(x.float(), size=s, mode="bilinear", align_corners=False)
            z = log_dct(x).double()
            total = z.sum(0) if total is None else total + z.sum(0)
            total_sq = (z * z).sum(0) if total_sq is None else total_sq + (z * z).sum(0)
            n += z.shape[0]
        if n == 0:
            return 0
        mean = total / n
        var = (total_sq / n - mean * mean).clamp_min(0.0)
        self.mean.copy_(mean.float())
        self.std.copy_(var.sqrt().float().clamp_min(1e-3))
        return n
