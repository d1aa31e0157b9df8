"""How a face is turned into a crop: the preprocessing spec.

`unmask prepare` writes it next to its manifest (`prepare.json`); training copies it into the
saved model (`model.json` -> "preprocess"), so `unmask eval`, `detect` and `serve` find and
crop faces exactly as the training data was cropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PreprocessSpec:
    margin: float = 1.3  # square box side = margin * max(face w, face h)
    crop_size: int = 256  # crops are resized to crop_size x crop_size (PNG, lossless)
    align: bool = False  # rotate so the eyes are level (landmarks)
    remove_background: bool = False  # mediapipe selfie segmentation; background -> grey
    faces: Literal["largest", "all"] = "largest"
    min_score: float = 0.5  # face detector confidence threshold
    keep_whole: bool = False  # no face found: keep the whole image resized (else reject)
    max_pixels: int = 100_000_000  # refuse larger images (decompression bombs)

    def __post_init__(self) -> None:
        if not self.margin >= 1.0:
            raise ValueError(f"margin must be >= 1.0, got {self.margin}")
        if not 16 <= self.crop_size <= 2048:
            raise ValueError(f"crop_size must be in [16, 2048], got {self.crop_size}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
