"""The types every predictor speaks, whatever its kind (torch, classical, composite);
`unmask.inference.loader.load_predictor` loads one.

    pred = load_predictor(model_dir)
    pred.needs                    # InputNeeds: landmarks? which native-pixel TileSpecs?
    scores = pred.predict(faces)  # [unmask.data.extract.Face, ...]
    scores.proba                  # (N, C) class probabilities, rows sum to 1
    scores.driver                 # per face: the composite member that drove the score (None)

A face (`unmask.data.extract.Face`, made by stage 1 on every path) is its square RGB uint8
crop (PreprocessSpec.crop_size), its face-mesh landmarks ((468, 2|3) in crop coordinates /
crop size, or None) and, for models
whose input is native-pixel tiles, `tiles[spec]` = `cut_tiles(decoded_original, box, spec)`.
`box_side` is the crop box's side in the original's pixels (composites calibrate a member per
face size with it; None when unknown). `image_size` is the (width, height) of the image the
tiles were cut from: a composite does not ask a tile member about an image smaller than its
tiles, whose tiles would be mostly mirror padding (None when unknown).
`predict_proba(crops, landmarks)` and `embed(crops, landmarks)` remain for crop-only callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from unmask.data.extract import Face
from unmask.data.spec import PreprocessSpec
from unmask.data.tiles import TileSpec
from unmask.metrics import p_fake as p_fake  # re-exported: defined once, in metrics


@dataclass(frozen=True)
class InputNeeds:
    """What a predictor needs besides the crop, so that workers prepare only that."""

    landmarks: bool = False
    tiles: tuple[TileSpec, ...] = ()

    def __or__(self, other: InputNeeds) -> InputNeeds:
        tiles = self.tiles + tuple(t for t in other.tiles if t not in self.tiles)
        return InputNeeds(self.landmarks or other.landmarks, tiles)

    @classmethod
    def of_input(cls, section: Any) -> InputNeeds:
        """What a network reads, from its model.json `input` section (landmarks, tiles)."""
        return cls(bool(section.landmarks), (section.tiles,) if section.tiles is not None else ())


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

    def predict(self, faces: Sequence[Face]) -> Scores: ...

    # exactly what `predict` scores for `faces` (and Grad-CAM explains): NetworkInputs, or
    # for a composite {member name: NetworkInputs} (unmask.inference.network_inputs)
    def network_inputs(self, faces: Sequence[Face]) -> Any: ...

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

    def network_inputs(self, faces: Sequence[Face]) -> Any:
        """The faces' crops as they are, one row each (`landmarks`: theirs)."""
        from unmask.inference.network_inputs import whole_crops

        return whole_crops([f.crop for f in faces], len(faces), [f.landmarks for f in faces])

    def predict(self, faces: Sequence[Face]) -> Scores:
        if not faces:
            return Scores(np.zeros((0, len(self.classes))), [])
        inp = self.network_inputs(faces)
        return Scores(np.asarray(self.predict_proba(inp.x, inp.landmarks)), [None] * len(faces))


class SavedPredictor:
    """Base of the predictors of a saved model: what each holds, set from its SavedModel
    in one place (its folder, the SavedModel, model.json as a dict, classes, the face
    finder and crop spec its input starts from, the verdict threshold)."""

    def __init__(self, model_dir: str | Path, saved: Any) -> None:
        from unmask.modelfile import model_to_json

        self.model_dir = Path(model_dir)
        self.saved = saved
        self.meta = model_to_json(saved)
        self.classes = saved.classes
        self.spec = saved.preprocess
        self.threshold = saved.threshold


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32: the one every CNN predictor takes of its logits, so a
    member scores bit-identically whichever way it was loaded."""
    z = np.asarray(logits, np.float32)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def faces_from(
    crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
) -> list[Face]:
    if landmarks is None:
        landmarks = [None] * len(crops)
    if len(landmarks) != len(crops):
        raise ValueError(f"got {len(landmarks)} landmark arrays for {len(crops)} crops")
    return [Face(c, lm) for c, lm in zip(crops, landmarks, strict=True)]
