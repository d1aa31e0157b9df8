"""F3-Net: frequency-aware face forgery detection (Qian et al., ECCV 2020, "Thinking in
Frequency: Face Forgery Detection by Mining Frequency-aware Clues").

Two frequency branches, as in the paper:

* FAD (frequency-aware decomposition): the full-image DCT of each channel is split by four
  band filters (low, middle, high, all: fixed binary masks on the anti-diagonal index u+v,
  plus learnable residuals `2*sigmoid(xi) - 1`), each band is transformed back to the image
  domain, giving 4 x 3 = 12 channels.
* LFS (local frequency statistics): a sliding 10x10 DCT (stride 2) of the grey image; the
  log-amplitude averaged in M = 6 frequency bands of each window gives a 6-channel map.

Simplified here (so that it trains on a CPU):

* the two Xception streams are replaced by small timm backbones (`backbone`, default
  `resnet10t`; any timm name works), one per branch, with `in_chans` 12 and 6;
* an RGB stream (same backbone) is added, as the task asks, and the three streams are fused
  late: pooled features concatenated -> linear + ReLU (the embedding) -> linear head. The
  paper's MixBlock cross-attention between FAD and LFS at middle and last layers is omitted;
* LFS filters are fixed (as in the reference implementation); FAD's learnable residuals are
  stored at `input_size` and bilinearly resized for other input sizes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unmask.data.normalize import IMAGENET_MEAN, IMAGENET_STD
from unmask.detectors.cnn import _check_classes, last_feature_layer, timm_backbone
from unmask.detectors.dct_input import dct2, dct_matrix, idct2, resize_map
from unmask.detectors.registry import register_detector


def band_mask(size: int, start: float, end: float) -> torch.Tensor:
    """(size, size) binary mask of DCT coefficients with start <= u+v <= end
    (the first band also includes u+v == start == 0)."""
    u = torch.arange(size)[:, None]
    v = torch.arange(size)[None, :]
    s = (u + v).float()
    lo = s >= start if start == 0 else s > start
    return (lo & (s <= end)).float()


class FAD(nn.Module):
    """Frequency-aware decomposition: (N, 3, H, W) -> (N, 12, H, W)."""

    def __init__(self, size: int = 224) -> None:
        super().__init__()
        self.size = size
        # (start, end) as fractions of the side, as in the reference implementation:
        # low [0, S/16], middle (S/16, S/8], high (S/8, S], all [0, 2S].
        self.bands = ((0.0, 1 / 16), (1 / 16, 1 / 8), (1 / 8, 1.0), (0.0, 2.0))
        self.learnable = nn.Parameter(torch.randn(len(self.bands), size, size) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        side = max(h, w)
        freq = dct2(x.float())  # (N, 3, H, W)
        learn = resize_map(self.learnable, (h, w))
        outs = []
        for i, (a, b) in enumerate(self.bands):
            base = band_mask(side, a * side, b * side)[:h, :w].to(x.device)
            filt = base + (2 * torch.sigmoid(learn[i]) - 1)
            outs.append(idct2(freq * filt))
        return torch.cat(outs, dim=1).to(x.dtype)


class LFS(nn.Module):
    """Local frequency statistics: (N, 3, H, W) -> (N, M, ceil(H/2), ceil(W/2))."""

    def __init__(self, window: int = 10, stride: int = 2, bands: int = 6) -> None:
        super().__init__()
        self.window, self.stride, self.m = window, stride, bands
        masks = torch.stack(
            [
                band_mask(window, 2.0 * window / bands * i, 2.0 * window / bands * (i + 1))
                for i in range(bands)
            ]
        )
        masks = masks / masks.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
        self.register_buffer("masks", masks, persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        rgb = (x.float() * self.std + self.mean) * 255.0
        grey = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])[:, None]
        pad = (self.window - self.stride) // 2
        patches = nn.functional.unfold(grey, self.window, padding=pad, stride=self.stride)
        oh = (h + 2 * pad - self.window) // self.stride + 1
        ow = (w + 2 * pad - self.window) // self.stride + 1
        patches = patches.transpose(1, 2).reshape(n, oh * ow, self.window, self.window)
        d = dct_matrix(self.window, x.device, patches.dtype)
        coef = d @ patches @ d.T
        logamp = torch.log10(coef.abs() + 1e-6)  # (N, L, w, w)
        stats = torch.einsum("nlij,mij->nml", logamp, self.masks)
        return stats.reshape(n, self.m, oh, ow).to(x.dtype)


class F3Net(nn.Module):
    """RGB + FAD + LFS streams fused late (see the module docstring for what is simplified)."""

    needs_landmarks = False

    def __init__(
        self,
        num_classes: int = 2,
        pretrained: bool = False,
        backbone: str = "resnet10t",
        input_size: int = 224,
        lfs_window: int = 10,
        lfs_bands: int = 6,
        drop_rate: float = 0.2,
        **timm_kw: Any,
    ) -> None:
        super().__init__()
        _check_classes(num_classes)
        self.fad = FAD(input_size)
        self.lfs = LFS(window=lfs_window, bands=lfs_bands)
        self.rgb_stream = timm_backbone(backbone, pretrained, in_chans=3, **timm_kw)
        self.fad_stream = timm_backbone(backbone, pretrained, in_chans=12, **timm_kw)
        self.lfs_stream = timm_backbone(backbone, pretrained, in_chans=lfs_bands, **timm_kw)
        d = int(self.rgb_stream.num_features)
        self.embed_dim = d
        self.fuse = nn.Sequential(nn.Linear(3 * d, d), nn.ReLU(inplace=False))
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(d, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.cat(
            [self.rgb_stream(x), self.fad_stream(self.fad(x)), self.lfs_stream(self.lfs(x))],
            dim=1,
        )
        return self.fuse(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def gradcam_layers(self) -> list[nn.Module]:
        return [last_feature_layer(self.rgb_stream), last_feature_layer(self.fad_stream)]


@register_detector("f3net", family="cnn", input="rgb+frequency")
def f3net(
    num_classes: int = 2, pretrained: bool = False, input_size: int = 224, **kw: Any
) -> nn.Module:
    """F3-Net (FAD + LFS frequency streams fused with RGB), small backbones for CPU."""
    return F3Net(num_classes=num_classes, pretrained=pretrained, input_size=input_size, **kw)
