"""The manifest: one CSV row per face crop, the contract between every stage.

Written by `unmask prepare` (and extended by `unmask synth`) as `MANIFEST_DIR/manifest.csv`
next to `prepare.json` (the PreprocessSpec) and `rejected.csv`. CSV rather than Parquet so
that it opens anywhere and needs no extra dependency.

Columns (paths are relative to the manifest's folder, so the folder can be moved):
    path        crop image (PNG, lossless)
    label       real | gan | edited | fake (a fake of unknown kind, see unmask.labels)
    source      where the input came from (dataset / folder name)
    group       leakage unit: all rows of one group share a split (a video, an input file,
                or a parent image for synthetic rows)
    split       train | val | test
    original    the input file the crop came from
    frame       frame index in a video; -1 for still images
    face_index  0 for the largest face, 1.. for others (with faces="all")
    box_x0 box_y0 box_x1 box_y1   square crop box in the original's pixel coordinates
    det_score   face detector confidence (empty when the image was kept whole)
    landmarks   .npy of (468, 3) face-mesh landmarks in crop coordinates / crop_size, or ""
    method      generation/editing method when known (CSV column `method`, synth method)
    parent      for synthetic rows: the crop path(s) they were made from, ";"-separated
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.csv"
MANIFEST_PARQUET = "manifest.parquet"  # `prepare --format parquet` (unmask.data.tables)
REJECTED_NAME = "rejected.csv"
SPEC_NAME = "prepare.json"
SPLITS: tuple[str, ...] = ("train", "val", "test")
COLUMNS: tuple[str, ...] = (
    "path",
    "label",
    "source",
    "group",
    "split",
    "original",
    "frame",
    "face_index",
    "box_x0",
    "box_y0",
    "box_x1",
    "box_y1",
    "det_score",
    "landmarks",
    "method",
    "parent",
)


def manifest_path(path: str | Path) -> Path:
    """Accept a manifest (CSV or Parquet) or the folder holding it."""
    p = Path(path)
    if p.is_dir():
        if not (p / MANIFEST_NAME).is_file() and (p / MANIFEST_PARQUET).is_file():
            return p / MANIFEST_PARQUET
        return p / MANIFEST_NAME
    return p


def is_manifest(path: str | Path) -> bool:
    """A manifest file (.csv / .parquet) or a folder holding one."""
    p = Path(path)
    if p.is_dir():
        return (p / MANIFEST_NAME).is_file() or (p / MANIFEST_PARQUET).is_file()
    return p.suffix.lower() in (".csv", ".parquet")


def read_manifest(path: str | Path, split: str | None = None):
    """The manifest as a pandas DataFrame (optionally one split), with `abs_path` and
    `abs_landmarks` columns resolved against the manifest's folder."""
    import pandas as pd

    from unmask.errors import UnmaskError

    p = manifest_path(path)
    if not p.is_file():
        raise UnmaskError(f"manifest not found: {p}")
    try:
        if p.suffix.lower() == ".parquet":
            from unmask.data.tables import read_table

            df = read_table(p, str_columns=("path", "group", "landmarks", "parent"))
        else:
            df = pd.read_csv(
                p,
                dtype={"path": str, "group": str, "landmarks": str, "parent": str},
                keep_default_na=False,
            )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise UnmaskError(f"{p}: not a readable manifest CSV ({exc.__class__.__name__})") from None
    missing = [c for c in ("path", "label", "source", "group", "split") if c not in df.columns]
    if missing:
        raise UnmaskError(f"{p}: manifest lacks column(s) {', '.join(missing)}")
    if split is not None:
        df = df[df["split"] == split].reset_index(drop=True)
    root = p.parent
    df["abs_path"] = [str(root / q) for q in df["path"]]
    if "landmarks" in df.columns:
        df["abs_landmarks"] = [str(root / q) if q else "" for q in df["landmarks"]]
    return df


def load_crop(path: str | Path):
    """A crop written by `unmask prepare`/`synth` (PNG) -> RGB uint8 array.
    Raises BadInputError (`missing`, `corrupt`) so batch jobs can record and go on."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from unmask.errors import BadInputError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise BadInputError(path, "missing") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise BadInputError(path, "corrupt", exc.__class__.__name__) from None


def load_landmarks(path: str | Path | None):
    """A crop's face-mesh landmarks ((468, 2|3) float32, crop coords / crop size), or None
    when there are none or the file is unusable. Never unpickles."""
    import numpy as np

    if not path:
        return None
    try:
        lm = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if lm.ndim != 2 or lm.shape[0] != 468 or lm.shape[1] not in (2, 3):
        return None
    return lm.astype(np.float32)


def row_box_sides(df: Any) -> Any:
    """(N,) each row's square crop-box side in the original's pixels, NaN where unknown (no
    box columns): what `detect` gives a composite for face-size calibration."""
    import numpy as np

    if not {"box_x0", "box_x1"} <= set(df.columns):
        return np.full(len(df), np.nan)
    return (df["box_x1"].astype(float) - df["box_x0"].astype(float)).to_numpy(np.float64)
