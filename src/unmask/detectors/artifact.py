"""The artifact detector: a small CNN on a fixed high-pass view of native-pixel tiles.

Input is a batch of tiles cut from the decoded original without any resampling
(`unmask.data.tiles`), ImageNet-normalised like every CNN input here. A fixed (or
constrained) front end throws away the image content and keeps the pixel-level residue
where upsampling layers leave their trace; a small CNN reads it:

    npr     x - up(down(x)), nearest, factor 2 (NPR, Tan et al. CVPR 2024): zero on any
            nearest-upsampled image, the periodic trace of other upsamplers otherwise
    srm     three fixed 5x5 SRM high-pass filters per channel (Fridrich & Kodovsky 2012)
    bayar   learned 5x5 filters constrained to predict-the-centre residuals (Bayar & Stamm
            2016): centre tap -1, other taps sum to 1
    dct     8x8 block DCT on the JPEG grid, log-magnitude per coefficient (64 x 3 planes
            at 1/8 resolution)
    rgb     no front end (a control)

    forward(x) -> logits            x: (N, 3, S, S) tiles, or (N, T, 3, S, S) tiles per face,
                                    whose logits are averaged over T (the face's score)
    features(x) -> (N, D)           pooled embedding (mean over tiles for 5-D input)
    gradcam_layers()                the last conv block

No loss, metric or file I/O here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from unmask.detectors.registry import register_detector

FRONT_ENDS: tuple[str, ...] = ("npr", "srm", "bayar", "dct", "rgb")


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """x - nearest_up(nearest_down(x)) with factor 2 (H and W even); zero exactly where x
    is constant on each aligned 2x2 block."""
    down = x[..., ::2, ::2]
    return x - down.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def srm_kernels() -> torch.Tensor:
    """The three classic 5x5 SRM residual filters (1st-order edge, KB 3x3, KV 5x5)."""
    f1 = torch.zeros(5, 5)
    f1[2, 1:4] = torch.tensor([1.0, -2.0, 1.0])
    f1 = f1 / 2.0
    f2 = torch.zeros(5, 5)
    f2[1:4, 1:4] = torch.tensor([[-1.0, 2.0, -1.0], [2.0, -4.0, 2.0], [-1.0, 2.0, -1.0]])
    f2 = f2 / 4.0
    f3 = (
        torch.tensor(
            [
                [-1.0, 2.0, -2.0, 2.0, -1.0],
                [2.0, -6.0, 8.0, -6.0, 2.0],
                [-2.0, 8.0, -12.0, 8.0, -2.0],
                [2.0, -6.0, 8.0, -6.0, 2.0],
                [-1.0, 2.0, -2.0, 2.0, -1.0],
            ]
        )
        / 12.0
    )
    return torch.stack([f1, f2, f3])


def dct_basis(n: int = 8) -> torch.Tensor:
    """(n*n, 1, n, n) orthonormal 2-D DCT-II basis as conv filters."""
    k = torch.arange(n, dtype=torch.float64)
    c = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    c[0] *= 1 / math.sqrt(2)
    c *= math.sqrt(2 / n)
    basis = torch.einsum("ux,vy->uvxy", c, c).reshape(n * n, 1, n, n)
    return basis.float()


class BayarConv(nn.Module):
    """Constrained conv: per filter the centre tap is -1 and the other taps sum to 1."""

    def __init__(self, in_ch: int, out_ch: int, k: int = 5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(out_ch, in_ch, k, k))  # positive: sums far from 0
        mask = torch.ones(k, k)
        mask[k // 2, k // 2] = 0
        self.register_buffer("mask", mask, persistent=False)
        self.k = k

    def constrained_weight(self) -> torch.Tensor:
        w = self.weight * self.mask
        s = w.sum(dim=(2, 3), keepdim=True)
        w = w / torch.where(s.abs() < 1e-4, torch.full_like(s, 1e-4), s)
        centre = torch.zeros_like(w)
        centre[..., self.k // 2, self.k // 2] = -1.0
        return w + centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.constrained_weight(), padding=self.k // 2)


class FrontEnd(nn.Module):
    """Tiles (N, 3, S, S) -> residual planes (N, C, S', S')."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in FRONT_ENDS:
            raise ValueError(f"front end must be one of {FRONT_ENDS}, got {kind!r}")
        self.kind = kind
        if kind == "srm":
            k = srm_kernels()[:, None]  # (3, 1, 5, 5), applied to each channel
            self.register_buffer("srm", k.repeat(3, 1, 1, 1), persistent=False)
        elif kind == "bayar":
            self.bayar = BayarConv(3, 6)
        elif kind == "dct":
            self.register_buffer("basis", dct_basis(8).repeat(3, 1, 1, 1), persistent=False)

    @property
    def out_channels(self) -> int:
        return {"npr": 3, "srm": 9, "bayar": 6, "dct": 192, "rgb": 3}[self.kind]

    @property
    def stride(self) -> int:
        return 8 if self.kind == "dct" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "npr":
            return npr_residual(x) * 4.0  # the residual is small: rescale to unit-ish range
        if self.kind == "srm":
            return F.conv2d(x, self.srm, padding=2, groups=3) * 4.0
        if self.kind == "bayar":
            return self.bayar(x)
        if self.kind == "dct":
            h, w = (x.shape[-2] // 8) * 8, (x.shape[-1] // 8) * 8
            coef = F.conv2d(x[..., :h, :w], self.basis, stride=8, groups=3)
            return torch.log1p(coef.abs() * 16.0)
        return x


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ArtifactNet(nn.Module):
    """Front end + a small all-conv body (full resolution first, then three stride-2
    stages) + global average pooling + linear head. ~0.3 M parameters at width 16."""

    needs_landmarks = False

    def __init__(
        self,
        num_classes: int = 2,
        front: str = "npr",
        width: int = 16,
        drop_rate: float = 0.2,
    ) -> None:
        super().__init__()
        if num_classes not in (2, 3):
            raise ValueError(f"num_classes must be 2 or 3, got {num_classes}")
        self.front = FrontEnd(front)
        c = self.front.out_channels
        w = int(width)
        if self.front.stride == 1:
            stages = [
                _conv_bn(c, w),
                _conv_bn(w, 2 * w, 2),
                _conv_bn(2 * w, 2 * w),
                _conv_bn(2 * w, 4 * w, 2),
                _conv_bn(4 * w, 4 * w),
                _conv_bn(4 * w, 8 * w, 2),
                _conv_bn(8 * w, 8 * w),
            ]
        else:  # 1/8-resolution planes (dct): no further down-sampling needed
            stages = [_conv_bn(c, 4 * w), _conv_bn(4 * w, 4 * w), _conv_bn(4 * w, 8 * w)]
        self.body = nn.Sequential(*stages)
        self.dropout = nn.Dropout(drop_rate)
        self.embed_dim = 8 * w
        self.head = nn.Linear(self.embed_dim, num_classes)

    def _tile_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.front(x)).mean(dim=(2, 3))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:
            n, t = x.shape[:2]
            return self._tile_features(x.flatten(0, 1)).view(n, t, -1).mean(1)
        return self._tile_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:  # (faces, tiles, 3, S, S): a face's logits = mean of its tiles'
            n, t = x.shape[:2]
            logits = self.head(self.dropout(self._tile_features(x.flatten(0, 1))))
            return logits.view(n, t, -1).mean(1)
        return self.head(self.dropout(self._tile_features(x)))

    def gradcam_layers(self) -> list[nn.Module]:
        return [self.body[-1][0]]


@register_detector("artifact", family="cnn", input="tiles")
def artifact(
    num_classes: int = 2, pretrained: bool = False, front: str = "npr", **kw: Any
) -> nn.Module:
    """Small CNN on a high-pass front end (npr/srm/bayar/dct) of native-pixel tiles."""
    if pretrained:
        from unmask.errors import ConfigError

        raise ConfigError("the artifact detector is trained from scratch (pretrained: false)")
    return ArtifactNet(num_classes=num_classes, front=front, **kw)
