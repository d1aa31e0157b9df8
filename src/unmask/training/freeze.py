"""Freeze a pretrained backbone for the first epochs (`optim.freeze_backbone_epochs`).

With ImageNet weights and a fresh linear head, the head's first large random gradients would
otherwise flow into the backbone and spoil the features it came with. While frozen, the
backbone's parameters get no gradient (AdamW skips them; they are still in the optimizer, so
nothing is rebuilt when they thaw) and its BatchNorm layers keep their ImageNet statistics.
"""

from __future__ import annotations

import lightning as L
from torch import nn


def set_backbone_frozen(model: nn.Module, frozen: bool) -> bool:
    """Freeze/thaw `model.backbone` (detectors without one are left alone); True if done."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        return False
    for p in backbone.parameters():
        p.requires_grad_(not frozen)
    if frozen:
        for m in backbone.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    return True


class FreezeBackbone(L.Callback):
    """Backbone frozen for epochs < `epochs`, trained afterwards."""

    def __init__(self, epochs: int) -> None:
        self.epochs = int(epochs)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # Lightning puts the module in train mode before this hook, so BN can be reset here.
        set_backbone_frozen(pl_module.model, trainer.current_epoch < self.epochs)
