"""`CompositePredictor`: a saved model made of member models and a fusion rule.

    MODEL/model.json           kind "composite", fusion {rule, members [{name, a, b, weight}],
                               bias}, threshold chosen on validation
    MODEL/members/<name>/      each a complete model folder (torch or classical), with its
                               own preprocessing: resized crop, landmarks or native tiles

Each member scores the faces from what its input spec asks for (`Face`), its P(fake)
is calibrated (Platt: z = a * logit(p) + b), and the fusion rule combines the members:

    max:       score = max_i sigmoid(z_i)                    driver = argmax_i z_i
    logistic:  score = sigmoid(bias + sum_i weight_i * z_i)  driver = argmax_i weight_i * z_i

A member may be calibrated per face size (`FusionMember.size_edges`): (a, b) then depend on
the face's crop-box side in native pixels (`Face.box_side`). A member that scores
native-pixel tiles sits out a face whose image is smaller than its tiles (a 40 px thumbnail:
its tiles would be mostly mirror padding, a pattern no training image had, which it reads
as strong evidence of a fake), or whose crop box is narrower than a tile (a 60 px face in a
640x360 video frame: the tiles show mostly what is around the face, and no training face
was that small; the artifact member called 5 of 6 such frames of a real video fake). The
fusion then uses the other members (max: the member is left out; logistic: its calibrated
logit counts as 0, no evidence), unless no member is left. The composite is binary:
proba = [1 - score, score]. Members share the composite's
PreprocessSpec (the face finder and the square crop box every member's input starts from).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask import metrics
from unmask.data.extract import Face
from unmask.errors import UnmaskError
from unmask.inference.predictor import InputNeeds, Predictor, SavedPredictor, Scores, faces_from
from unmask.modelfile import Fusion, SavedModel

_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(np.asarray(z, dtype=np.float64))


def calibration(fusion: Fusion, sides: np.ndarray | None, n: int) -> tuple[np.ndarray, ...]:
    """(N, M) Platt slopes and intercepts per face and member: a member's per-size values
    where it has them and the face's crop-box side is known (finite), else its (a, b)."""
    a = np.tile([m.a for m in fusion.members], (n, 1)).astype(np.float64)
    b = np.tile([m.b for m in fusion.members], (n, 1)).astype(np.float64)
    if sides is None:
        return a, b
    sides = np.asarray(sides, dtype=np.float64)
    known = np.isfinite(sides)
    for i, m in enumerate(fusion.members):
        if m.size_edges:
            k = np.searchsorted(np.asarray(m.size_edges), np.where(known, sides, 0), "right")
            a[known, i] = np.asarray(m.size_a)[k[known]]
            b[known, i] = np.asarray(m.size_b)[k[known]]
    return a, b


def calibrated_logits(
    p_fake: np.ndarray, fusion: Fusion, sides: np.ndarray | None = None
) -> np.ndarray:
    """(N, M) member P(fake) -> (N, M) calibrated logits z_i = a_i * logit(p_i) + b_i,
    (a_i, b_i) by face size for members calibrated per size (`sides`: (N,) crop-box
    sides in native pixels, NaN when unknown)."""
    a, b = calibration(fusion, sides, len(p_fake))
    return a * logit(p_fake) + b


def fuse(
    p_fake: np.ndarray,
    fusion: Fusion,
    sides: np.ndarray | None = None,
    usable: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) member P(fake) -> (score (N,), index of the driving member (N,)). `usable`:
    (N, M) bool, False where a member sits the face out (see the module doc)."""
    z = calibrated_logits(p_fake, fusion, sides)
    if usable is not None:
        usable = np.asarray(usable, dtype=bool) | ~np.asarray(usable, dtype=bool).any(
            axis=1, keepdims=True
        )  # a face no member may score is scored by all of them
        z = np.where(usable, z, -np.inf if fusion.rule == "max" else 0.0)
    if fusion.rule == "max":
        return sigmoid(z.max(axis=1)), z.argmax(axis=1)
    w = np.array([m.weight for m in fusion.members])
    contrib = z * w[None, :]
    return sigmoid(fusion.bias + contrib.sum(axis=1)), contrib.argmax(axis=1)


def tile_usable(
    tile_sizes: Sequence[int],
    image_sizes: Sequence[tuple[int, int] | None],
    box_sides: Sequence[float | None] | None = None,
) -> np.ndarray:
    """(N, M): may member m (tiles of `tile_sizes[m]` px, 0 for none) score face n, whose
    image is `image_sizes[n]` = (w, h) and whose crop box is `box_sides[n]` px wide (None or
    NaN: unknown, yes)? Only if no side of the image is shorter than a tile, and the crop
    box is at least a tile wide (else the tiles show mostly what is around the face)."""
    out = np.ones((len(image_sizes), len(tile_sizes)), dtype=bool)
    sides = [None] * len(image_sizes) if box_sides is None else list(box_sides)
    for i, (size, side) in enumerate(zip(image_sizes, sides, strict=True)):
        if size is not None:
            out[i] &= [min(size) >= t for t in tile_sizes]
        if side is not None and np.isfinite(side):
            out[i] &= [side >= t for t in tile_sizes]
    return out


def tile_size(predictor: Predictor) -> int:
    """The largest native-pixel tile a predictor scores (0: it scores no tiles)."""
    return max((t.size for t in predictor.needs.tiles), default=0)


class CompositePredictor(SavedPredictor):
    def __init__(
        self, model_dir: str | Path, saved: SavedModel, load_member: Callable[[Path], Predictor]
    ) -> None:
        """`load_member(folder)`: a member folder -> its predictor (the loader's
        `load_predictor` as a member, with the composite's device and runtime); handed in,
        so that this module does not import the loader that imports it."""
        from unmask.modelfile import member_dir

        assert saved.fusion is not None  # schema: composite
        super().__init__(model_dir, saved)
        self.fusion = saved.fusion
        self.members: dict[str, Predictor] = {}
        for m in saved.fusion.members:
            d = member_dir(self.model_dir, m.name)
            if not d.is_dir():
                raise UnmaskError(f"{self.model_dir}: member folder members/{m.name} missing")
            pred = load_member(d)
            if pred.spec != self.spec:
                raise UnmaskError(
                    f"{d}: member preprocessing differs from the composite's; members share "
                    "one face finder and crop box"
                )
            self.members[m.name] = pred
        self.needs = InputNeeds()
        for pred in self.members.values():
            self.needs = self.needs | pred.needs

    def usable(self, faces: Sequence[Face]) -> np.ndarray:
        """(N, M) whether each member may score each face (`tile_usable`)."""
        sizes = [tile_size(p) for p in self.members.values()]
        return tile_usable(sizes, [f.image_size for f in faces], [f.box_side for f in faces])

    def network_inputs(self, faces: Sequence[Face]) -> dict[str, Any]:
        """What each member's network scores for the faces: {member name: NetworkInputs}
        (each member's `predict`, which the fusion combines, scores exactly its own)."""
        return {name: p.network_inputs(faces) for name, p in self.members.items()}

    def member_p_fake(self, faces: Sequence[Face]) -> np.ndarray:
        """(N, M) uncalibrated P(fake) of every member, in fusion order. Members with the
        same `input_key` (same size, normalisation, tiles) share one `network_inputs`: the
        shipped default's three members resize and normalise each crop once, not three
        times."""
        shared: dict[Any, Any] = {}
        cols = []
        for p in self.members.values():
            key = getattr(p, "input_key", None)
            if key is None or not faces:
                cols.append(metrics.p_fake(p.predict(faces).proba))
                continue
            if key not in shared:
                shared[key] = p.network_inputs(faces)
            cols.append(metrics.p_fake(p.predict(faces, inputs=shared[key]).proba))
        return np.stack(cols, axis=1) if cols else np.zeros((len(faces), 0))

    def predict(self, faces: Sequence[Face]) -> Scores:
        if len(faces) == 0:
            return Scores(np.zeros((0, 2)), [])
        p = self.member_p_fake(faces)
        sides = np.array([np.nan if f.box_side is None else f.box_side for f in faces])
        score, drive = fuse(p, self.fusion, sides, self.usable(faces))
        names = list(self.members)
        z = calibrated_logits(p, self.fusion, sides)
        return Scores(
            np.stack([1.0 - score, score], axis=1),
            [names[i] for i in drive],
            {n: sigmoid(z[:, i]) for i, n in enumerate(names)},
        )

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        if self.needs.tiles:
            raise UnmaskError(
                f"{self.model_dir}: a member scores native-pixel tiles; score whole images "
                "(detect, eval on a manifest) rather than crops"
            )
        return self.predict(faces_from(crops, landmarks)).proba

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        raise UnmaskError(
            f"{self.model_dir}: a composite model has no single embedding; index with one of "
            f"its members (members/{next(iter(self.members))})"
        )
