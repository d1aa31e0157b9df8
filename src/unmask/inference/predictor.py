"""Score faces with a saved model, whatever its kind (torch, classical, composite).

    pred = load_predictor(model_dir)
    pred.needs                    # InputNeeds: landmarks? which native-pixel TileSpecs?
    scores = pred.predict([FaceInput(crop, landmarks, {spec: tiles})])
    scores.proba                  # (N, C) class probabilities, rows sum to 1
    scores.driver                 # per face: the composite member that drove the score (None)

A `FaceInput` is one face: its square RGB uint8 crop (PreprocessSpec.crop_size), its
face-mesh landmarks ((468, 2|3) in crop coordinates / crop size, or None) and, for models
whose input is native-pixel tiles, `tiles[spec]` = `cut_tiles(decoded_original, box, spec)`.
`box_side` is the crop box's side in the original's pixels (composites calibrate a member per
face size with it; None when unknown). `image_size` is the (width, height) of the image the
tiles were cut from: a composite does not ask a tile member about an image smaller than its
tiles, whose tiles would be mostly mirror padding (None when unknown).
`predict_proba(crops, landmarks)` and `embed(crops, landmarks)` remain for crop-only callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from unmask.data.spec import PreprocessSpec
from unmask.data.tiles import TileSpec
from unmask.errors import UnmaskError


@dataclass(frozen=True)
class FaceInput:
    crop: np.ndarray
    landmarks: np.ndarray | None = None
    tiles: Mapping[TileSpec, np.ndarray] = field(default_factory=dict)
    box_side: float | None = None  # the square crop box's side in the original's pixels
    image_size: tuple[int, int] | None = None  # (w, h) of the image the tiles come from


@dataclass(frozen=True)
class InputNeeds:
    """What a predictor needs besides the crop, so that workers prepare only that."""

    landmarks: bool = False
    tiles: tuple[TileSpec, ...] = ()

    def __or__(self, other: InputNeeds) -> InputNeeds:
        tiles = self.tiles + tuple(t for t in other.tiles if t not in self.tiles)
        return InputNeeds(self.landmarks or other.landmarks, tiles)


@dataclass
class Scores:
    proba: np.ndarray  # (N, C)
    driver: list[str | None]  # composite: member that drove each face's score
    members: dict[str, np.ndarray] = field(default_factory=dict)  # name -> calibrated P(fake)


@runtime_checkable
class Predictor(Protocol):
    meta: dict[str, Any]  # model.json as a plain dict
    classes: tuple[str, ...]  # logit order; classes[0] is always "real"
    spec: PreprocessSpec
    threshold: float  # verdict "fake" when P(fake) >= threshold
    needs: InputNeeds

    def predict(self, faces: Sequence[FaceInput]) -> Scores: ...

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray: ...

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray: ...


class CropPredictor:
    """Base for predictors that score crops (and landmarks) only: `predict` is
    `predict_proba` on the faces' crops, with no driver. Stand-ins in tests use it too."""

    needs = InputNeeds()

    def predict_proba(self, crops, landmarks=None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict(self, faces: Sequence[FaceInput]) -> Scores:
        crops = [f.crop for f in faces]
        lms = [f.landmarks for f in faces]
        proba = self.predict_proba(crops, lms) if faces else np.zeros((0, len(self.classes)))
        return Scores(np.asarray(proba), [None] * len(faces))


def faces_from(
    crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
) -> list[FaceInput]:
    if landmarks is None:
        landmarks = [None] * len(crops)
    if len(landmarks) != len(crops):
        raise ValueError(f"got {len(landmarks)} landmark arrays for {len(crops)} crops")
    return [FaceInput(c, lm) for c, lm in zip(crops, landmarks, strict=True)]


def saved_needs(model_dir: str | Path, saved: Any = None) -> InputNeeds:
    """What a saved model reads besides the crop, from model.json alone (members' too);
    `saved`: its already-read SavedModel, if at hand."""
    from unmask.modelfile import member_dir, read_saved_model

    saved = saved if saved is not None else read_saved_model(model_dir)
    if saved.kind == "torch":
        assert saved.input is not None  # schema: torch models have an input section
        tiles = (saved.input.tiles,) if saved.input.tiles is not None else ()
        return InputNeeds(bool(saved.input.landmarks), tiles)
    if saved.kind == "composite":
        assert saved.fusion is not None  # schema: composites have a fusion section
        needs = InputNeeds()
        for m in saved.fusion.members:
            needs = needs | saved_needs(member_dir(model_dir, m.name))
        return needs
    return InputNeeds()  # classical models read the crop only


def p_fake(proba: np.ndarray) -> np.ndarray:
    """P(fake) = 1 - P(real): the score every binary metric and verdict uses."""
    return 1.0 - np.asarray(proba)[:, 0]


def load_predictor(
    model_dir: str | Path,
    device: str = "cpu",
    member: bool = False,
    runtime: str | None = None,
    warn: Any = None,
) -> Predictor:
    """The saved model in `model_dir`, ready to score. Refuses (one line) before building
    anything: a model.json outside the schema, an unknown builder or option, a backbone
    outside timm's registry, links out of the folder. `runtime` ("auto", "onnx", "torch";
    None: $UNMASK_RUNTIME, else auto) picks what scores CNN members on the CPU
    (`unmask.inference.onnx_runtime`); `warn(msg)` hears about fall-backs to torch."""
    from unmask.modelfile import read_saved_model

    saved = read_saved_model(model_dir)
    if saved.kind == "classical":
        from unmask.inference.classical_predictor import ClassicalPredictor

        return ClassicalPredictor(Path(model_dir), saved)
    if saved.kind == "torch":
        from unmask.inference.torch_predictor import TorchPredictor

        return TorchPredictor(Path(model_dir), saved, device=device, runtime=runtime, warn=warn)
    if member:
        raise UnmaskError(f"{model_dir}: a composite member cannot itself be a composite")
    from unmask.inference.composite import CompositePredictor

    return CompositePredictor(Path(model_dir), saved, device=device, runtime=runtime, warn=warn)
