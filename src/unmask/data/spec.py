"""How a face is turned into a crop: the preprocessing spec.

`unmask prepare` writes it next to its manifest (`prepare.json`); training copies it into the
saved model (`model.json` -> "preprocess"), so `unmask eval`, `detect` and `serve` find and
crop faces exactly as the training data was cropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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


def read_prepare_spec(manifest: str | Path) -> tuple[PreprocessSpec, str | None]:
    """The one reader of `prepare.json` (next to a manifest): the PreprocessSpec the crops
    were made with, strictly parsed; the default spec plus a note when the file is absent."""
    import json

    from unmask.config import from_dict
    from unmask.data.manifest import SPEC_NAME, manifest_path
    from unmask.errors import ConfigError, UnmaskError

    p = manifest_path(manifest).parent / SPEC_NAME
    if not p.is_file():
        return PreprocessSpec(), f"{SPEC_NAME} not found next to the manifest; default spec"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnmaskError(f"{p}: not valid JSON") from None
    if not isinstance(data, dict):
        raise UnmaskError(f"{p}: expected a JSON object")
    # `unmask prepare` writes {"preprocess": {...}, ...}; older/synthetic ones the bare spec
    spec = next((data[k] for k in ("preprocess", "spec") if isinstance(data.get(k), dict)), None)
    if spec is None:
        spec = {k: v for k, v in data.items() if k in PreprocessSpec.__dataclass_fields__}
    try:
        return from_dict(PreprocessSpec, spec), None
    except ConfigError as exc:
        raise UnmaskError(f"{p}: {exc}") from None
