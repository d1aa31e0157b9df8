"""What a predictor's network scores for a batch of faces (`Predictor.network_inputs`).

    inp = pred.network_inputs(faces)   # NetworkInputs (a composite: {member: NetworkInputs})
    inp.x                              # the rows the network scores: (B, 3, S, S) for a CNN,
                                       # (B, D) features for a classical model
    inp.face_of[b]                     # the face row b belongs to
    inp.where[b]                       # row b's box in its face's crop pixels (tiles)

`predict` scores exactly these rows and Grad-CAM explains exactly these rows, so the map
of a face is computed on the tensor its score came from. A crop model has one row per face
covering the whole crop (`where` None); a tile model has `TileSpec.count` rows per face,
each a native-pixel tile cut from the original in the face's crop box, and `where` maps
each tile back into the crop (`tile_boxes_in_crop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unmask.data.tiles import TileSpec, tile_origins


@dataclass(frozen=True)
class NetworkInputs:
    x: Any  # the scored rows: torch (B, 3, S, S), NumPy (B, D) features, or a stand-in's crops
    face_of: np.ndarray  # (B,) int: the face each row belongs to
    landmarks: Any = None  # (B, 468, 3) torch: the second input of landmark CNNs
    # (B, 4) float (x0, y0, x1, y1) of each row in its face's crop pixels (NaN: unknown);
    # None: every row is its face's whole crop
    where: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.face_of)


def whole_crops(x: Any, n: int, landmarks: Any = None) -> NetworkInputs:
    """One row per face, each its whole crop (crop CNNs, classical features, stand-ins)."""
    return NetworkInputs(x, np.arange(n), landmarks)


def tile_boxes_in_crop(face: Any, spec: TileSpec) -> np.ndarray:
    """(count, 4) boxes of a face's deterministic tiles (`cut_tiles` without rng) in its
    crop's pixels. The crop is the square crop box resized to the crop's size, so an
    original pixel (x, y) sits at ((x - x0) * scale, (y - y0) * scale) in it (an aligned,
    rotated crop only approximately). NaN rows when the face's box or image size is
    unknown (`face.box`, `face.image_size`)."""
    box = getattr(face, "box", None)
    size = getattr(face, "image_size", None)
    if box is None or size is None:
        return np.full((spec.count, 4), np.nan)
    x0, y0, x1, y1 = (float(v) for v in box)
    h, w = np.asarray(face.crop).shape[:2]
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    origins = tile_origins(tuple(int(v) for v in box), int(size[0]), int(size[1]), spec)
    return np.array(
        [
            ((x - x0) * sx, (y - y0) * sy, (x + spec.size - x0) * sx, (y + spec.size - y0) * sy)
            for x, y in origins
        ]
    )


def tile_rows(faces: Sequence[Any], spec: TileSpec) -> tuple[np.ndarray, np.ndarray]:
    """(face_of (N * count,), where (N * count, 4)): the bookkeeping of faces' tiles
    stacked face after face."""
    face_of = np.repeat(np.arange(len(faces)), spec.count)
    if not faces:
        return face_of, np.zeros((0, 4))
    return face_of, np.concatenate([tile_boxes_in_crop(f, spec) for f in faces])


def stacked_tiles(
    faces: Sequence[Any],
    spec: TileSpec | None,
    mean: Sequence[float],
    std: Sequence[float],
    size: int,
    model_dir: Any = "",
) -> np.ndarray:
    """(N * count, 3, S, S) float32: every face's native-pixel tiles normalised
    (`normalize_tiles`), face after face; one line naming the model when a face lacks
    them (`size`: the empty batch's tile size)."""
    from unmask.data.normalize import normalize_tiles
    from unmask.errors import UnmaskError

    if len(faces) == 0:
        return np.zeros((0, 3, size, size), np.float32)
    out = []
    for f in faces:
        tiles = f.tiles.get(spec) if spec is not None else None
        if tiles is None or tiles.shape[:3] != (spec.count, spec.size, spec.size):
            raise UnmaskError(
                f"{model_dir}: this model scores {spec.count} native-pixel tiles of "
                f"{spec.size} px per face, cut from the original image"
            )
        out.append(normalize_tiles(tiles, mean, std))
    return np.concatenate(out)
