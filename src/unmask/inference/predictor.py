"""Score face crops with a saved model, whatever its family.

`load_predictor(model_dir)` reads `model.json` and returns a `Predictor`. Crops are RGB
uint8 arrays as `unmask prepare` writes them (PreprocessSpec.crop_size square); landmarks,
when a model needs them (two-stream), are (468, 2 or 3) float arrays in crop coordinates
normalised to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from unmask.data.spec import PreprocessSpec
from unmask.inference.saved_model import read_model_json


@runtime_checkable
class Predictor(Protocol):
    meta: dict[str, Any]
    classes: tuple[str, ...]  # logit order; classes[0] is always "real"
    spec: PreprocessSpec
    threshold: float  # verdict "fake" when P(fake) >= threshold

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        """(N, C) class probabilities; rows sum to 1."""
        ...

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        """(N, D) features used for retrieval (penultimate layer / spectrum features)."""
        ...


def p_fake(proba: np.ndarray) -> np.ndarray:
    """P(fake) = 1 - P(real): the score every binary metric and verdict uses."""
    return 1.0 - np.asarray(proba)[:, 0]


def load_predictor(model_dir: str | Path, device: str = "cpu") -> Predictor:
    meta = read_model_json(model_dir)
    kind = meta["kind"]
    if kind == "classical":
        from unmask.detectors.classical import ClassicalPredictor

        return ClassicalPredictor(Path(model_dir), meta)
    if kind == "torch":
        from unmask.training.torch_predictor import TorchPredictor

        return TorchPredictor(Path(model_dir), meta, device=device)
    from unmask.errors import UnmaskError

    raise UnmaskError(f"{model_dir}: unknown model kind {kind!r}")
