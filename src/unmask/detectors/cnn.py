"""Single-stream CNN detectors on timm backbones.

Every CNN detector in unmask is a small `nn.Module` with the same contract
(`unmask.detectors.protocol.Detector`):

    forward(x) -> logits (N, num_classes)          x: ImageNet-normalised (N, 3, H, W)
    forward(x, landmarks) -> logits                 when `needs_landmarks` is True
    features(x[, landmarks]) -> (N, D)              penultimate embedding (retrieval)
    gradcam_layers() -> list[nn.Module]             conv layers for Grad-CAM
    (registry tag needs_landmarks)                  engine/predictor pass (N, 468, 3) landmarks
    fit_input_stats(batches)                        with registry tag input_stats (resnet18-dct)

No loss, metric or file I/O lives in a detector. Names registered here:
`resnet18`, `resnet18-dct`, `xception` (timm `legacy_xception`, the FaceForensics++
baseline), `efficientnet_b0` and `timm` (any timm model: `create_detector("timm",
backbone="convnext_atto")`; configs may also write `name: timm:convnext_atto`, see
`build_cnn`). `pretrained=True` loads ImageNet weights from local files only
(`unmask.detectors.pretrained`: tf_efficientnet_lite0/lite2 from the `unmask[pretrained]`
extra); nothing is ever downloaded unless the user sets UNMASK_ALLOW_DOWNLOAD=1. Those two
backbones are built by unmask itself (`unmask.detectors.efficientnet_lite`: timm's modules,
weights and outputs, without importing timm), so scoring them starts faster.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unmask.data.normalize import IMAGENET_MEAN, IMAGENET_STD  # the normalisation of every input
from unmask.detectors.dct_input import LogDCTStandardize
from unmask.detectors.registry import create_detector, register_detector, resolve_name


def _check_classes(num_classes: int) -> None:
    if num_classes not in (2, 3):
        raise ValueError(f"num_classes must be 2 or 3, got {num_classes}")


def timm_backbone(name: str, pretrained: bool = False, in_chans: int = 3, **kw: Any) -> nn.Module:
    """A timm model without classifier (`num_classes=0`): `model(x)` -> pooled (N, D)."""
    from unmask.detectors.pretrained import create_backbone
    from unmask.errors import ConfigError

    try:
        return create_backbone(name, pretrained, num_classes=0, in_chans=in_chans, **kw)
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        if "Unknown model" in str(exc):
            raise ConfigError(f"unknown timm model {name!r} (see timm.list_models())") from None
        raise


def last_feature_layer(backbone: nn.Module) -> nn.Module:
    """The module producing the backbone's last feature map (timm `feature_info`), moved back
    to the nearest module with parameters when that is a parameter-free activation (in-place
    ReLUs do not take backward hooks)."""
    info = getattr(backbone, "feature_info", None)
    names = [n for n, _ in backbone.named_modules()]
    target = None
    if info:
        try:
            target = info[-1]["module"]
        except (KeyError, TypeError, IndexError):
            target = None
    if target is None or target not in names:
        convs = [n for n, m in backbone.named_modules() if isinstance(m, nn.Conv2d)]
        return backbone.get_submodule(convs[-1])
    mod = backbone.get_submodule(target)
    if any(True for _ in mod.parameters()):
        return mod
    idx = names.index(target)
    for n in reversed(names[:idx]):
        m = backbone.get_submodule(n)
        if n and any(True for _ in m.parameters(recurse=False)):
            return m
    return mod


class TimmClassifier(nn.Module):
    """A timm backbone (global pooling) + dropout + linear head."""

    needs_landmarks = False

    def __init__(
        self,
        backbone: str,
        num_classes: int = 2,
        pretrained: bool = False,
        drop_rate: float = 0.0,
        renormalize: bool = False,
        **timm_kw: Any,
    ) -> None:
        super().__init__()
        _check_classes(num_classes)
        self.backbone = timm_backbone(backbone, pretrained=pretrained, **timm_kw)
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.backbone.num_features, num_classes)
        self.embed_dim = int(self.backbone.num_features)
        # Inputs are ImageNet-normalised everywhere; `renormalize` maps them to the
        # backbone's own pretraining normalisation (0.5/0.5 for tf_efficientnet_lite*) so
        # that pretrained first-layer statistics hold. Not persistent: derived from timm.
        self.renormalize = bool(renormalize)
        if self.renormalize:
            cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
            mean = torch.tensor(cfg.get("mean", IMAGENET_MEAN), dtype=torch.float32)
            std = torch.tensor(cfg.get("std", IMAGENET_STD), dtype=torch.float32)
            in_mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
            in_std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
            # x_new = (x * in_std + in_mean - mean) / std = x * scale + shift
            scale, shift = in_std / std, (in_mean - mean) / std
            self.register_buffer("norm_scale", scale.view(1, 3, 1, 1), persistent=False)
            self.register_buffer("norm_shift", shift.view(1, 3, 1, 1), persistent=False)

    def transform_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.renormalize:
            return x * self.norm_scale + self.norm_shift
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.transform_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def gradcam_layers(self) -> list[nn.Module]:
        return [last_feature_layer(self.backbone)]


class DCTClassifier(TimmClassifier):
    """A timm backbone on the per-coefficient standardised log-DCT of each RGB channel
    (Frank et al. 2020, "Leveraging Frequency Analysis for Deep Fake Image Recognition").
    The statistics are buffers (`input_stats.mean/std`), fitted by the engine on the
    training split before training (`fit_input_stats`) and saved with the weights."""

    def __init__(
        self,
        backbone: str = "resnet18",
        num_classes: int = 2,
        pretrained: bool = False,
        drop_rate: float = 0.0,
        input_size: int = 224,
        **timm_kw: Any,
    ) -> None:
        super().__init__(backbone, num_classes, pretrained, drop_rate, **timm_kw)
        self.input_stats = LogDCTStandardize(3, input_size)

    def transform_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_stats(x)

    def fit_input_stats(self, batches) -> int:
        return self.input_stats.fit_stats(batches)


@register_detector("resnet18", family="cnn", input="rgb")
def resnet18(num_classes: int = 2, pretrained: bool = False, **kw: Any) -> nn.Module:
    """ResNet-18 (timm) on RGB crops + linear head."""
    return TimmClassifier("resnet18", num_classes, pretrained, **kw)


@register_detector("resnet18-dct", family="cnn", input="dct", input_stats=True)
def resnet18_dct(
    num_classes: int = 2, pretrained: bool = False, input_size: int = 224, **kw: Any
) -> nn.Module:
    """ResNet-18 on the standardised log-DCT of each channel (Frank et al. 2020)."""
    return DCTClassifier("resnet18", num_classes, pretrained, input_size=input_size, **kw)


@register_detector("xception", family="cnn", input="rgb")
def xception(num_classes: int = 2, pretrained: bool = False, **kw: Any) -> nn.Module:
    """Xception (timm legacy_xception): the FaceForensics++ baseline."""
    return TimmClassifier("legacy_xception", num_classes, pretrained, **kw)


@register_detector("efficientnet_b0", family="cnn", input="rgb")
def efficientnet_b0(num_classes: int = 2, pretrained: bool = False, **kw: Any) -> nn.Module:
    """EfficientNet-B0 (timm) on RGB crops + linear head."""
    return TimmClassifier("efficientnet_b0", num_classes, pretrained, **kw)


@register_detector("timm", family="cnn", input="rgb")
def timm_any(
    num_classes: int = 2, pretrained: bool = False, backbone: str = "resnet18", **kw: Any
) -> nn.Module:
    """Any timm model as a detector: `create_detector("timm", backbone="convnext_atto")`."""
    return TimmClassifier(backbone, num_classes, pretrained, **kw)


def build_cnn(
    name: str, num_classes: int = 2, pretrained: bool = False, **kwargs: Any
) -> nn.Module:
    """`create_detector` plus the `timm:<model>` shorthand; checks the family is cnn."""
    from unmask.detectors.registry import family_detector

    name, kwargs = resolve_name(name, kwargs)
    family_detector(name, "cnn")
    from unmask.detectors.protocol import check_detector

    model = create_detector(name, num_classes=num_classes, pretrained=pretrained, **kwargs)
    return check_detector(model, name)
