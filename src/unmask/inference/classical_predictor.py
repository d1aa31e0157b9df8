"""`ClassicalPredictor`: score faces with a saved classical model (kind "classical").

Crops -> frequency features (`unmask.features`) -> the exported pipeline arrays
(`unmask.detectors.classical.ArrayModel`, NumPy only) -> probabilities. Only the folder's
own `weights.safetensors` is read; its arrays are checked against `model.json`'s head and
feature size before the model scores anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from unmask.data.extract import Face
from unmask.errors import UnmaskError
from unmask.inference.network_inputs import NetworkInputs, whole_crops
from unmask.inference.predictor import CropPredictor, SavedPredictor, Scores, faces_from
from unmask.modelfile import SavedModel


class ClassicalPredictor(CropPredictor, SavedPredictor):
    def __init__(self, model_dir: str | Path, saved: SavedModel) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from unmask.detectors.classical import ArrayModel
        from unmask.detectors.registry import check_saved
        from unmask.features.frequency import feature_dim
        from unmask.modelfile import weights_path

        assert saved.features is not None and saved.head is not None  # schema: classical
        super().__init__(model_dir, saved)
        self.kind = saved.features.kind
        self.size = saved.features.size
        check_saved(saved.detector.name, "classical", {})  # options were for training only
        wpath = weights_path(self.model_dir)
        try:
            arrays = load_file(str(wpath))
        except (SafetensorError, OSError) as exc:
            raise UnmaskError(f"{wpath}: unreadable weights ({str(exc)[:80]})") from None
        bad = next(
            (k for k, v in arrays.items() if v.dtype.kind == "f" and not np.isfinite(v).all()), None
        )
        if bad is not None:
            raise UnmaskError(f"{wpath}: tensor {bad!r} holds NaN or infinite values")
        try:
            self.model = ArrayModel(arrays, asdict(saved.head))
        except ValueError as exc:
            raise UnmaskError(f"{wpath}: {exc}") from None
        if self.model.mean.shape[0] != feature_dim(self.kind, self.size):
            raise UnmaskError(f"{wpath}: weights do not fit {self.kind} features of {self.size}")

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Raw (unstandardised) frequency features, (N, D)."""
        from unmask.features.frequency import batch_features

        return batch_features(crops, self.kind, self.size)

    def predict_proba_features(self, feats: np.ndarray) -> np.ndarray:
        return self.model.predict_proba_features(feats)

    def network_inputs(self, faces: Sequence[Face]) -> NetworkInputs:
        """What the model scores: the (N, D) raw feature matrix of the faces' crops."""
        crops = [f.crop for f in faces]
        if not crops:
            return whole_crops(np.zeros((0, self.model.mean.shape[0])), 0)
        return whole_crops(self.features(crops), len(crops))

    def predict(self, faces: Sequence[Face]) -> Scores:
        if len(faces) == 0:
            return Scores(np.zeros((0, len(self.classes))), [])
        return Scores(
            self.predict_proba_features(self.network_inputs(faces).x), [None] * len(faces)
        )

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        return self.predict(faces_from(crops, landmarks)).proba

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.model.mean.shape[0]), dtype=np.float32)
        return self.model.standardize(self.features(crops)).astype(np.float32)
