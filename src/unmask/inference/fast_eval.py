"""A faster copy of a trained network for scoring on CPU: batch norm folded into the
convolutions and channels-last memory.

    fast = fast_copy(model, example)    # same logits (to float rounding), about 2x faster

In eval mode a BatchNorm2d is an affine map per channel, so a convolution followed by one
equals a convolution with scaled weights and a shifted bias (`fold_conv_bn`). Dropping the
separate normalisation pass, and running depthwise convolutions on NHWC memory (oneDNN's
fast path), halves the CPU time of EfficientNet-Lite0 at 224 px (48 -> 25 ms a face on one
core, measured in issue 13). Nothing is learned or approximated: the copy is checked
against the original on `example` and the original is returned when they disagree (an
architecture whose batch norm does not directly follow its convolution, say). The original
stays untouched for training, Grad-CAM hooks and anything else that names its modules.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

# Max |fast - original| over the example's logits allowed, relative to their scale.
REL_TOL = 1e-3


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold eval-mode `bn` into `conv` in place: conv'(x) = bn(conv(x))."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("batch norm without running statistics cannot be folded")
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bias * scale + shift)


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module:
    """What is left of a folded batch norm: timm's BatchNormAct2d applies dropout and an
    activation after normalising; a plain BatchNorm2d leaves nothing."""
    rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
    return nn.Sequential(*rest) if rest else nn.Identity()


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d among the children of one
    module (registration order, as torchvision, timm and our detectors write them). In
    place; returns how many were folded. Run `matches` afterwards: registration order is
    the usual order of use, not a guarantee."""
    folded = 0
    for parent in list(model.modules()):
        names = list(parent._modules)
        for prev, name in zip(names, names[1:], strict=False):
            conv, bn = parent._modules[prev], parent._modules[name]
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(bn, nn.BatchNorm2d)
                and bn.num_features == conv.out_channels
                and bn.track_running_stats
            ):
                fold_conv_bn(conv, bn)
                parent._modules[name] = _after_norm(bn)
                folded += 1
    return folded


def matches(a: torch.Tensor, b: torch.Tensor) -> bool:
    scale = max(float(b.abs().max()), 1.0)
    return a.shape == b.shape and float((a - b).abs().max()) <= REL_TOL * scale


def fast_copy(model: nn.Module, *example: torch.Tensor) -> nn.Module:
    """An eval-mode copy of `model` with batch norm folded and channels-last weights, or
    `model` itself when the copy's logits on the `example` inputs differ from the
    original's."""
    model.eval()
    fast = copy.deepcopy(model)
    fold_batchnorm(fast)
    fast = fast.to(memory_format=torch.channels_last).eval()
    with torch.inference_mode():
        want = model(*example)
        got = fast(*(to_channels_last(x) for x in example))
    return fast if matches(got, want) else model


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """NHWC memory for 4-D batches (a no-op copy otherwise)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
