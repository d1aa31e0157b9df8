"""`TorchPredictor`: score faces with a saved CNN model (kind "torch").

    pred = TorchPredictor(model_dir, read_saved_model(model_dir), device="cpu")
    scores = pred.predict(faces)                    # Faces -> Scores (proba (N, C))
    proba = pred.predict_proba(crops, landmarks)    # crop models only
    inp = pred.network_inputs(faces)                # what the network scores (and Grad-CAM
                                                    # explains on pred.model): crops or tiles

The network is rebuilt by its registered builder with `pretrained=False` (no download),
after `check_saved` refused unknown builders, options and backbones; only the folder's own
`weights.safetensors` is read. Crop models resize and normalise exactly as in training
(`unmask.data.normalize.resize_normalize`). Tile models (`input.tiles` set) run the network
on each of a face's native-pixel tiles and return the softmax of the MEAN of the tiles'
logits.

Scoring runs on ONNX Runtime (`runtime="onnx"`, the default on the CPU when onnxruntime is
installed: `unmask.inference.onnx_runtime`, a graph exported from this network at its first
load, checked against it and cached; once cached, the loader scores it with
`unmask.inference.onnx_predictor.OnnxPredictor`, without torch), else on `fast`, a copy with batch norm
folded into the convolutions and channels-last memory (`unmask.inference.fast_eval`, checked
against the original at load). `model` stays the network as trained, for Grad-CAM; `embed`
runs on `fast`. Models that read landmarks (two inputs) score with torch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from unmask.data.extract import Face
from unmask.data.normalize import landmarks_array, resize_normalize_batch
from unmask.errors import UnmaskError
from unmask.inference.fast_eval import fast_copy, to_channels_last
from unmask.inference.network_inputs import NetworkInputs, stacked_tiles, tile_rows, whole_crops
from unmask.inference.predictor import InputNeeds, SavedPredictor, Scores, faces_from, softmax
from unmask.modelfile import SavedModel


class TorchPredictor(SavedPredictor):
    def __init__(
        self,
        model_dir: str | Path,
        saved: SavedModel,
        device: str = "cpu",
        batch_size: int = 32,
        runtime: str | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        """`runtime`: "auto" (ONNX Runtime on the CPU when installed), "onnx" or "torch";
        None: $UNMASK_RUNTIME, else auto. `warn`: where a fall-back to torch or a refused
        cached graph is said (default: a line on stderr)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from unmask.detectors.cnn import build_cnn
        from unmask.detectors.registry import check_saved
        from unmask.modelfile import weights_path

        assert saved.input is not None  # the schema guarantees it for kind "torch"
        super().__init__(model_dir, saved)
        self.input_size = saved.input.size
        self.mean, self.std = saved.input.mean, saved.input.std
        self.tile_spec = saved.input.tiles
        self.device = torch.device(device)
        self.batch_size = batch_size
        det = saved.detector
        info = check_saved(det.name, "cnn", det.kwargs)  # before anything is built or read
        self.needs_landmarks = info.needs_landmarks
        if self.needs_landmarks != saved.input.landmarks:
            raise UnmaskError(f"{self.model_dir}: input.landmarks disagrees with {det.name!r}")
        self.needs = InputNeeds.of_input(saved.input)
        wpath = weights_path(self.model_dir)
        try:
            self.model = build_cnn(
                det.name, num_classes=len(self.classes), pretrained=False, **det.kwargs
            )
        except (TypeError, ValueError, UnmaskError) as exc:
            msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise UnmaskError(f"{self.model_dir}: cannot build {det.label!r} ({msg})") from None
        try:
            state = load_file(str(wpath), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise UnmaskError(f"{wpath}: unreadable weights ({str(exc)[:80]})") from None
        bad = next(
            (k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()),
            None,
        )
        if bad is not None:  # a NaN network scores nothing, yet every face would read "real"
            raise UnmaskError(f"{wpath}: tensor {bad!r} holds NaN or infinite values")
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0][:120]
            raise UnmaskError(f"{wpath}: weights do not match {det.label!r} ({first})") from None
        self.model.eval().to(self.device)
        from unmask.inference.onnx_runtime import resolve_runtime

        self.runtime = "torch"
        self._onnx = None
        if resolve_runtime(runtime, self.device) == "onnx" and not self.needs_landmarks:
            self._onnx = self._onnx_scorer(wpath, warn or _stderr_warning)
        if self._onnx is None:
            _ = self.fast  # built and checked now, as before: its cost stays in the load
        else:
            self.runtime = "onnx"

    @cached_property
    def fast(self) -> torch.nn.Module:
        """The folded channels-last copy torch scores with (built on first use when ONNX
        Runtime scores: then only `embed` needs it)."""
        return fast_copy(self.model, *self._example())

    def _example(self, n: int = 1) -> list[torch.Tensor]:
        """A fixed random input, to check the fast copy (and the ONNX graph) against the
        model."""
        gen = torch.Generator().manual_seed(0)
        size = self.tile_spec.size if self.tile_spec is not None else self.input_size
        x = [torch.randn(n, 3, size, size, generator=gen)]
        if self.needs_landmarks:
            x.append(torch.rand(n, 468, 3, generator=gen))
        return [t.to(self.device) for t in x]

    def _onnx_scorer(self, wpath: Path, warn: Callable[[str], None]):
        """The ONNX Runtime scorer, or None (said through `warn`) when this network cannot
        be exported or its graph does not give torch's logits: then torch scores."""
        from unmask.inference.onnx_runtime import graph_identity, onnx_scorer

        identity = graph_identity(self.saved)
        try:  # batch 2: a traced batch of 1 could be baked into a reshape
            return onnx_scorer(self.model, wpath, identity, self._example(2)[0], warn)
        except Exception as exc:  # any failure to export or load: torch still scores
            msg = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
            warn(f"{self.model_dir}: scoring with torch, not ONNX Runtime ({msg})")
            return None

    # -- preprocessing -------------------------------------------------------------------
    def preprocess(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """(N, 3, S, S) float tensor on CPU, as the model saw its training crops."""
        return torch.from_numpy(resize_normalize_batch(crops, self.input_size, self.mean, self.std))

    def preprocess_tiles(self, faces: Sequence[Face]) -> torch.Tensor:
        """(N * count, 3, S, S): every face's tiles, face after face."""
        size = self.tile_spec.size if self.tile_spec is not None else self.input_size
        return torch.from_numpy(
            stacked_tiles(faces, self.tile_spec, self.mean, self.std, size, self.model_dir)
        )

    def network_inputs(self, faces: Sequence[Face]) -> NetworkInputs:
        """Exactly what the network scores for `faces` (what `predict` scores and Grad-CAM
        explains): a tile model's tiles of every face, face after face, with `where` each
        tile sits in its face's crop; else the resized, normalised crops (and landmarks)."""
        if self.tile_spec is not None:
            face_of, where = tile_rows(faces, self.tile_spec)
            return NetworkInputs(self.preprocess_tiles(faces), face_of, where=where)
        x = self.preprocess([f.crop for f in faces])
        lms = self.landmarks_tensor([f.landmarks for f in faces]) if self.needs_landmarks else None
        return whole_crops(x, len(faces), lms)

    def landmarks_tensor(
        self, landmarks: Sequence[np.ndarray | None] | None, n: int | None = None
    ) -> torch.Tensor:
        """(n, 468, 3) landmarks; zeros for crops without any."""
        if landmarks is None:
            landmarks = [None] * (n or 0)
        if n is not None and len(landmarks) != n:
            raise ValueError(f"got {len(landmarks)} landmark arrays for {n} crops")
        return torch.from_numpy(np.stack([landmarks_array(lm) for lm in landmarks]))

    # -- scoring -------------------------------------------------------------------------
    def _batches(self, x: torch.Tensor, lms: torch.Tensor | None, fn) -> torch.Tensor:
        out = []
        # torch's fast copy runs in channels-last memory; ONNX Runtime takes plain NCHW
        layout = (lambda t: t) if fn is self._onnx else to_channels_last
        with torch.inference_mode():
            for i in range(0, len(x), self.batch_size):
                args = [layout(x[i : i + self.batch_size].to(self.device))]
                if lms is not None:
                    args.append(lms[i : i + self.batch_size].to(self.device))
                out.append(fn(*args).float().cpu())
        return torch.cat(out)

    @property
    def input_key(self) -> tuple:
        """Predictors with equal keys make equal `network_inputs` from the same faces (a
        composite computes them once for all such members)."""
        return (
            self.input_size,
            tuple(self.mean),
            tuple(self.std),
            self.needs_landmarks,
            self.tile_spec,
        )

    def _run(self, faces: Sequence[Face], fn, inputs: NetworkInputs | None = None) -> torch.Tensor:
        """`fn`'s output for each face, on exactly `network_inputs(faces)` (`inputs`: those,
        already made by a predictor with the same `input_key`)."""
        inp = inputs if inputs is not None else self.network_inputs(faces)
        out = self._batches(inp.x, inp.landmarks, fn)
        if self.tile_spec is not None:  # a face's logits: the mean of its tiles' logits
            return out.reshape(len(faces), self.tile_spec.count, -1).mean(1)
        return out

    def predict(self, faces: Sequence[Face], inputs: NetworkInputs | None = None) -> Scores:
        if len(faces) == 0:
            return Scores(np.zeros((0, len(self.classes)), dtype=np.float32), [])
        proba = softmax(self._run(faces, self._onnx or self.fast, inputs).numpy())
        return Scores(proba, [None] * len(faces))

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        return self.predict(faces_from(crops, landmarks)).proba

    def embed_faces(self, faces: Sequence[Face]) -> np.ndarray:
        if len(faces) == 0:
            return np.zeros((0, int(self.model.embed_dim)), dtype=np.float32)
        return self._run(faces, self.fast.features).numpy()

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        return self.embed_faces(faces_from(crops, landmarks))


def _stderr_warning(msg: str) -> None:
    print(f"unmask: warning: {msg}", file=sys.stderr)
