"""EfficientNet-Lite0 and Lite2 (Tan & Le 2019, the "Lite" variants for mobile CPUs:
no squeeze-excitation, ReLU6, fixed stem and head), written here so that scoring a model
built on them imports neither timm nor torchvision (about 1.5 s of every `unmask detect`
start-up, issue 13).

Module names, parameter order and shapes are those of timm's `tf_efficientnet_lite0` and
`tf_efficientnet_lite2` (TensorFlow "same" padding on strided convolutions, batch-norm eps
1e-3), so the same state dict loads into either, and the ImageNet weights of the
`unmask[pretrained]` extra map onto it. `tests/test_efficientnet_lite.py` checks that
both give the same outputs as timm on the same weights.

    backbone = efficientnet_lite("tf_efficientnet_lite0")       # model(x) -> (N, 1280)
    classifier = efficientnet_lite("tf_efficientnet_lite2", num_classes=1000)
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# Per stage: block kind, kernel, stride, expansion; channels and repeats per variant.
_KIND = ("ds", "ir", "ir", "ir", "ir", "ir", "ir")
_KERNEL = (3, 3, 5, 3, 5, 5, 3)
_STRIDE = (1, 2, 2, 2, 1, 2, 1)
_EXPAND = (1, 6, 6, 6, 6, 6, 6)
VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "tf_efficientnet_lite0": ((16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)),
    "tf_efficientnet_lite2": ((16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)),
}
STEM, HEAD = 32, 1280
BN_EPS = 1e-3  # TensorFlow's default, as the weights were trained
PRETRAINED_CFG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding: for stride 2 it pads more on the
    right/bottom than on the left/top, depending on the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []  # F.pad order: width (left, right), then height (top, bottom)
        sizes = (x.shape[-1], x.shape[-2])
        for size, k, s in zip(sizes, self.kernel_size[::-1], self.stride[::-1], strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:  # symmetric: "same" padding is static
        return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
    return Conv2dSame(cin, cout, k, stride, 0, groups=groups, bias=False)


class BatchNormAct2d(nn.BatchNorm2d):
    """Batch norm, then ReLU6 (or nothing): timm's layer of the same name, same keys."""

    def __init__(self, channels: int, act: bool = True) -> None:
        super().__init__(channels, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class _Block(nn.Module):
    """A block's branch, plus the input when shape allows (stride 1, same channels)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.skip = stride == 1 and cin == cout

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        return x + y if self.skip else y


class DepthwiseSeparable(_Block):
    # module names (and so state-dict keys) are timm's: conv_dw, bn1, conv_pw, bn2
    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__(cin, cout, stride)
        self.conv_dw = conv(cin, cin, k, stride, groups=cin)
        self.bn1 = BatchNormAct2d(cin)
        self.conv_pw = conv(cin, cout, 1)
        self.bn2 = BatchNormAct2d(cout, act=False)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))


class InvertedResidual(_Block):
    # timm's names: conv_pw (expand), bn1, conv_dw, bn2, conv_pwl (project), bn3
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__(cin, cout, stride)
        mid = cin * expand
        self.conv_pw = conv(cin, mid, 1)
        self.bn1 = BatchNormAct2d(mid)
        self.conv_dw = conv(mid, mid, k, stride, groups=mid)
        self.bn2 = BatchNormAct2d(mid)
        self.conv_pwl = conv(mid, cout, 1)
        self.bn3 = BatchNormAct2d(cout, act=False)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        return self.bn3(self.conv_pwl(y))


class EfficientNetLite(nn.Module):
    """`forward(x)` -> pooled (N, 1280) features, or logits when `num_classes` > 0."""

    def __init__(self, name: str, num_classes: int = 0) -> None:
        super().__init__()
        if name not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite {name!r} (known: {sorted(VARIANTS)})")
        channels, repeats = VARIANTS[name]
        self.conv_stem = conv(3, STEM, 3, 2)
        self.bn1 = BatchNormAct2d(STEM)
        stages, cin = [], STEM
        for kind, cout, n, k, s, e in zip(
            _KIND, channels, repeats, _KERNEL, _STRIDE, _EXPAND, strict=True
        ):
            blocks = []
            for i in range(n):
                stride = s if i == 0 else 1
                if kind == "ds":
                    blocks.append(DepthwiseSeparable(cin, cout, k, stride))
                else:
                    blocks.append(InvertedResidual(cin, cout, k, stride, e))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = conv(cin, HEAD, 1)
        self.bn2 = BatchNormAct2d(HEAD)
        self.num_features = HEAD
        self.classifier = nn.Linear(HEAD, num_classes) if num_classes > 0 else nn.Identity()
        self.pretrained_cfg = dict(PRETRAINED_CFG)
        # where Grad-CAM looks (timm's feature_info: the output of the last stage)
        self.feature_info = [{"module": f"blocks.{len(stages) - 1}", "num_chs": cin}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv_stem(x))
        x = self.bn2(self.conv_head(self.blocks(x)))
        return self.classifier(x.mean((2, 3)))


def efficientnet_lite(name: str, num_classes: int = 0) -> EfficientNetLite:
    """EfficientNet-Lite `name`; `num_classes=0`: no classifier (pooled features)."""
    return EfficientNetLite(name, num_classes)
