"""What every CNN detector is, in code (the registry builds them; nothing probes them).

    forward(x) -> logits (N, num_classes)        x: ImageNet-normalised (N, 3, H, W)
    forward(x, landmarks) -> logits               when the registry tags needs_landmarks
    features(x[, landmarks]) -> (N, embed_dim)    penultimate embedding (retrieval)
    gradcam_layers() -> list[nn.Module]           conv layers for Grad-CAM

Two registry tags complete it, read before the network is built: `needs_landmarks` (the
network takes landmarks) and `input_stats` (it has `fit_input_stats(batches) -> int`, which
the engine calls on the training split before training). No loss, metric or file I/O lives in
a detector.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Detector(Protocol):
    embed_dim: int

    def __call__(self, *inputs: Any) -> Any: ...

    def features(self, *inputs: Any) -> Any: ...

    def gradcam_layers(self) -> list[Any]: ...


@runtime_checkable
class FitsInputStats(Protocol):
    def fit_input_stats(self, batches: Iterable[Any]) -> int: ...


def check_detector(model: Any, name: str) -> Detector:
    """The built network, checked once against the contract (a registration bug is a
    programming error, reported with the detector's name)."""
    if not isinstance(model, Detector):
        raise TypeError(f"detector {name!r} does not follow unmask.detectors.protocol.Detector")
    return model
