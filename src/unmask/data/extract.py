"""Stage 1 in one place: a decoded input -> its faces, as one typed record (`Face`).

A `Face` is what every path scores: local `detect`, the Ray engine, `serve`, `eval`,
`prepare` and tile training all make it here and hand it to a predictor unchanged. It
carries the square RGB crop (PreprocessSpec.crop_size), the face-mesh landmarks when the
model reads them, the native-pixel tiles of every TileSpec the model asked for (cut from
the decoded original in the crop box, so the original never travels), and where the face
came from (file, frame, box, image size).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from unmask.data.tiles import TileSpec

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Face:
    crop: np.ndarray  # (S, S, 3) uint8 RGB, S = PreprocessSpec.crop_size
    landmarks: np.ndarray | None = None  # (468, 2|3), x/y in [0, 1] of the crop; None if none
    tiles: Mapping[TileSpec, np.ndarray] = field(default_factory=dict)  # spec -> (T, t, t, 3)
    box: Box | None = None  # square crop box (x0, y0, x1, y1) in the original's pixels
    image_size: tuple[int, int] | None = None  # (w, h) of the image the box and tiles are in
    frame: int = -1  # video frame index; -1 for a still image
    face_index: int = 0  # order within its image or frame, largest first
    det_score: float | None = None  # detector confidence; None when the image was kept whole
    source: str = ""  # the file it came from

    @property
    def box_side(self) -> float | None:
        """The square crop box's side in the original's pixels (composites calibrate a
        member per face size with it); None when unknown."""
        return None if self.box is None else float(self.box[2] - self.box[0])
