"""`TorchPredictor`: score face crops with a saved CNN model (kind "torch").

    pred = TorchPredictor(model_dir, read_model_json(model_dir), device="cpu")
    proba = pred.predict_proba(crops, landmarks)    # (N, C), rows sum to 1
    emb = pred.embed(crops, landmarks)              # (N, D) penultimate features
    x = pred.preprocess(crops)                      # (N, 3, S, S) for Grad-CAM on pred.model

The detector is rebuilt from `model.json` with `pretrained=False` (no download), weights come
from `weights.safetensors`, and crops are resized/normalised exactly as in training
(`unmask.training.augment.resize_normalize`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unmask.data.spec import PreprocessSpec
from unmask.errors import UnmaskError
from unmask.training.augment import landmarks_array, resize_normalize


class TorchPredictor:
    def __init__(
        self,
        model_dir: str | Path,
        meta: dict[str, Any],
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        import dataclasses

        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from unmask.detectors.cnn import build_cnn
        from unmask.inference.saved_model import WEIGHTS_FILE

        self.model_dir = Path(model_dir)
        self.meta = meta
        self.classes = tuple(meta["classes"])
        names = {f.name for f in dataclasses.fields(PreprocessSpec)}
        self.spec = PreprocessSpec(
            **{k: v for k, v in (meta.get("preprocess") or {}).items() if k in names}
        )
        self.threshold = float(meta.get("threshold", 0.5))
        inp = meta.get("input") or {}
        self.input_size = int(inp.get("size", 224))
        self.mean = tuple(inp.get("mean", (0.485, 0.456, 0.406)))
        self.std = tuple(inp.get("std", (0.229, 0.224, 0.225)))
        self.device = torch.device(device)
        self.batch_size = batch_size
        det = meta["detector"]
        name = det["name"] if isinstance(det, dict) else str(det)
        kwargs = dict(det.get("kwargs") or {}) if isinstance(det, dict) else {}
        self.model = build_cnn(name, num_classes=len(self.classes), pretrained=False, **kwargs)
        wpath = self.model_dir / WEIGHTS_FILE
        if not wpath.is_file():
            raise UnmaskError(f"{self.model_dir}: {WEIGHTS_FILE} missing")
        try:
            state = load_file(str(wpath), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise UnmaskError(f"{wpath}: unreadable weights ({exc})") from None
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise UnmaskError(f"{wpath}: weights do not match {name!r} ({first})") from None
        self.model.eval().to(self.device)
        self.needs_landmarks = bool(getattr(self.model, "needs_landmarks", False))

    # -- preprocessing -------------------------------------------------------------------
    def preprocess(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """(N, 3, S, S) float tensor on CPU, as the model saw its training crops."""
        if len(crops) == 0:
            return torch.zeros(0, 3, self.input_size, self.input_size)
        arr = np.stack([resize_normalize(c, self.input_size, self.mean, self.std) for c in crops])
        return torch.from_numpy(arr)

    def landmarks_tensor(
        self, landmarks: Sequence[np.ndarray | None] | None, n: int
    ) -> torch.Tensor:
        """(n, 468, 3) landmarks; zeros for crops without any."""
        if landmarks is None:
            landmarks = [None] * n
        if len(landmarks) != n:
            raise ValueError(f"got {len(landmarks)} landmark arrays for {n} crops")
        return torch.from_numpy(np.stack([landmarks_array(lm) for lm in landmarks]))

    # -- scoring -------------------------------------------------------------------------
    def _run(self, crops, landmarks, fn) -> list[torch.Tensor]:
        out = []
        n = len(crops)
        lms = self.landmarks_tensor(landmarks, n) if self.needs_landmarks else None
        with torch.inference_mode():
            for i in range(0, n, self.batch_size):
                x = self.preprocess(crops[i : i + self.batch_size]).to(self.device)
                args = (x,)
                if lms is not None:
                    args = (x, lms[i : i + self.batch_size].to(self.device))
                out.append(fn(*args).float().cpu())
        return out

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        logits = self._run(crops, landmarks, self.model)
        return torch.softmax(torch.cat(logits), 1).numpy()

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, int(getattr(self.model, "embed_dim", 0))), dtype=np.float32)
        return torch.cat(self._run(crops, landmarks, self.model.features)).numpy()
