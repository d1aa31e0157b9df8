"""`OnnxPredictor`: a CNN member scored from its cached ONNX graph, without torch.

Importing torch takes about 1.6 s, the largest part of `unmask detect`'s start-up on one
photo. Once a member's graph is in the cache (`unmask.inference.onnx_runtime`: exported
from the network and checked against torch's logits at its first load, stored under a key
that hashes the weights), scoring needs only ONNX Runtime and NumPy:

    pred = OnnxPredictor.from_cache(model_dir, saved)   # None: not cached yet
    pred.predict(faces)                                 # same inputs, same graph

The inputs are `TorchPredictor`'s, made by the same NumPy functions
(`resize_normalize_batch`, `normalize_tiles`), so the logits are the ones the torch-loaded
member's ONNX scorer gives, and both take the same softmax (`predictor.softmax`): the
scores are bit-identical. What
needs the network itself (Grad-CAM's `model`, `embed`) loads the member with torch on first
use (`torch_twin`). A member that reads landmarks, a GPU or `--runtime torch` never come
here (`unmask.inference.loader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from unmask.data.extract import Face
from unmask.data.normalize import resize_normalize_batch
from unmask.errors import UnmaskError
from unmask.inference.network_inputs import NetworkInputs, stacked_tiles, tile_rows, whole_crops
from unmask.inference.predictor import InputNeeds, SavedPredictor, Scores, faces_from, softmax
from unmask.modelfile import SavedModel


class OnnxPredictor(SavedPredictor):
    runtime = "onnx"
    device = "cpu"
    needs_landmarks = False

    def __init__(self, model_dir: str | Path, saved: SavedModel, scorer: Any, warn: Any = None):
        assert saved.input is not None and not saved.input.landmarks
        super().__init__(model_dir, saved)
        self.input_size = saved.input.size
        self.mean, self.std = saved.input.mean, saved.input.std
        self.tile_spec = saved.input.tiles
        self.needs = InputNeeds.of_input(saved.input)
        self.batch_size = 32
        self._onnx = scorer
        self._warn = warn

    @classmethod
    def from_cache(
        cls, model_dir: str | Path, saved: SavedModel, warn: Any = None
    ) -> OnnxPredictor | None:
        """The member on its cached graph, or None when there is none (or it fails a
        check: then the torch load rebuilds it and says so)."""
        from unmask.inference.onnx_runtime import (
            cache_key,
            cached_scorer,
            file_sha256,
            graph_identity,
        )
        from unmask.modelfile import weights_path

        wpath = weights_path(model_dir)
        try:
            key = cache_key(file_sha256(wpath), graph_identity(saved))
            scorer = cached_scorer(wpath, key)
        except (UnmaskError, OSError):
            return None
        return None if scorer is None else cls(model_dir, saved, scorer, warn)

    @property
    def input_key(self) -> tuple:
        """As `TorchPredictor.input_key`: equal keys, equal `network_inputs`."""
        return (self.input_size, tuple(self.mean), tuple(self.std), False, self.tile_spec)

    def network_inputs(self, faces: Sequence[Face]) -> NetworkInputs:
        """What the graph scores for `faces` (NumPy): `TorchPredictor.network_inputs`'s
        values, made by the same functions."""
        if self.tile_spec is not None:
            face_of, where = tile_rows(faces, self.tile_spec)
            return NetworkInputs(self._tiles(faces), face_of, where=where)
        x = resize_normalize_batch([f.crop for f in faces], self.input_size, self.mean, self.std)
        return whole_crops(x, len(faces))

    def _tiles(self, faces: Sequence[Face]) -> np.ndarray:
        spec = self.tile_spec
        return stacked_tiles(faces, spec, self.mean, self.std, spec.size, self.model_dir)

    def predict(self, faces: Sequence[Face], inputs: NetworkInputs | None = None) -> Scores:
        if len(faces) == 0:
            return Scores(np.zeros((0, len(self.classes)), dtype=np.float32), [])
        inp = inputs if inputs is not None else self.network_inputs(faces)
        x = np.asarray(inp.x)
        logits = np.concatenate(
            [self._onnx.run(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        )
        if self.tile_spec is not None:  # a face's logits: the mean of its tiles' logits
            logits = logits.reshape(len(faces), self.tile_spec.count, -1).mean(1)
        return Scores(softmax(logits), [None] * len(faces))

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        return self.predict(faces_from(crops, landmarks)).proba

    # -- what needs the network: the member loaded with torch, on first use -------------
    @cached_property
    def torch_twin(self) -> Any:
        from unmask.inference.torch_predictor import TorchPredictor

        return TorchPredictor(self.model_dir, self.saved, runtime="torch", warn=self._warn)

    @property
    def model(self) -> Any:
        return self.torch_twin.model

    @property
    def fast(self) -> Any:
        return self.torch_twin.fast

    def preprocess(self, crops: Sequence[np.ndarray]) -> Any:
        """`TorchPredictor.preprocess`: the crops as a torch batch."""
        return self.torch_twin.preprocess(crops)

    def preprocess_tiles(self, faces: Sequence[Face]) -> Any:
        """`TorchPredictor.preprocess_tiles`: the faces' tiles as a torch batch."""
        return self.torch_twin.preprocess_tiles(faces)

    def embed_faces(self, faces: Sequence[Face]) -> np.ndarray:
        return self.torch_twin.embed_faces(faces)

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        return self.torch_twin.embed(crops, landmarks)
