"""Score manifest rows with any predictor: the one place eval turns rows into `FaceInput`s.

    proba = score_rows(predictor, df, perturbation)        # (N, C)
    scores = score_row_faces(predictor, df)                 # Scores (proba, driver)

A row gives its crop (`path`) and landmarks; a model whose input is native-pixel tiles
(`predictor.needs.tiles`) also gets the tiles cut from the row's decoded `original` in its
square crop box (`box_x0..box_y1`), decoded once per row and never cached on disk.
Classical models on clean crops take a shortcut: features extracted from the crop files by
2 processes (cached in `feature_cache` when given).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.data.manifest import row_box_sides  # noqa: F401  (eval, bench, compose use it here)
from unmask.errors import BadInputError, UnmaskError
from unmask.evaluation.perturb import NONE, Perturbation, apply

BOX_COLUMNS = ("box_x0", "box_y0", "box_x1", "box_y1")


def load_crops(paths: Sequence[str], progress: bool = True) -> list[np.ndarray]:
    from tqdm import tqdm

    from unmask.features.extract import load_rgb

    return [load_rgb(p) for p in tqdm(paths, desc="load crops", unit="img", disable=not progress)]


def row_landmarks(df: Any) -> list[np.ndarray | None]:
    if "abs_landmarks" not in df.columns or not any(df["landmarks"]):
        return [None] * len(df)
    from unmask.data.manifest import load_landmarks

    return [
        load_landmarks(p) if rel else None
        for rel, p in zip(df["landmarks"], df["abs_landmarks"], strict=True)
    ]


def row_image_sizes(df: Any) -> list[tuple[int, int] | None]:
    """Each row's original (w, h) as prepare recorded it; None where unknown."""
    if not {"orig_width", "orig_height"} <= set(df.columns):
        return [None] * len(df)
    import pandas as pd

    w = pd.to_numeric(df["orig_width"], errors="coerce").to_numpy(dtype=np.float64)
    h = pd.to_numeric(df["orig_height"], errors="coerce").to_numpy(dtype=np.float64)
    return [
        (int(a), int(b)) if np.isfinite(a) and np.isfinite(b) else None
        for a, b in zip(w, h, strict=True)
    ]


def original_path(row: Any, manifest_dir: Path | None) -> Path:
    """A row's `original` as written by prepare (absolute, or relative to where prepare
    ran): tried as given, then against the manifest's folder."""
    p = Path(str(row["original"]))
    if p.is_absolute() or p.exists() or manifest_dir is None:
        return p
    return manifest_dir / p


def row_tiles(
    df: Any, specs: Sequence[Any], perturbation: Perturbation = NONE, seed: int = 0
) -> tuple[list[dict[Any, np.ndarray]], list[tuple[int, int]]]:
    """Per row, {TileSpec: tiles} cut from the decoded original in the row's crop box
    (the perturbation, if any, applied to the original first), and that image's (w, h)."""
    from unmask.data.imageio import load_image
    from unmask.data.tiles import cut_tiles

    missing = [c for c in ("original", *BOX_COLUMNS) if c not in df.columns]
    if missing:
        raise UnmaskError(f"manifest lacks {', '.join(missing)}: tile models need the originals")
    mdir = _manifest_dir(df, None)
    out, sizes = [], []
    for i, (_, row) in enumerate(df.iterrows()):
        path = original_path(row, mdir)
        frame = _frame_of(row)
        try:
            # a video row's original is the video: decode the row's own frame
            image = _read_frame(path, frame) if frame >= 0 else load_image(path)
        except BadInputError as exc:
            raise UnmaskError(f"row {row['path']}: original {exc}") from None
        image = apply(image, perturbation, seed + i)
        box = tuple(int(float(row[c])) for c in BOX_COLUMNS)
        out.append({s: cut_tiles(image, box, s) for s in specs})
        sizes.append((image.shape[1], image.shape[0]))
    return out, sizes


def _frame_of(row: Any) -> int:
    """The row's video frame index, or -1 for a still image (missing/empty/NaN too)."""
    try:
        f = float(row.get("frame", -1))
    except (TypeError, ValueError):
        return -1
    return int(f) if np.isfinite(f) else -1


def _read_frame(path: Path, frame: int) -> np.ndarray:
    from unmask.data.video import read_frame

    return read_frame(path, frame)


def _manifest_dir(df: Any, fallback: Path | None) -> Path | None:
    """The manifest's folder: abs_path minus the row's relative path."""
    if not len(df):
        return fallback
    abs_p, rel = Path(df["abs_path"].iloc[0]), Path(df["path"].iloc[0])
    return Path(str(abs_p)[: -len(str(rel))] or ".") if str(abs_p).endswith(str(rel)) else fallback


def score_row_faces(
    predictor: Any,
    df: Any,
    perturbation: Perturbation = NONE,
    crops: list[np.ndarray] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """`Scores` (proba, driver per row) for the rows of `df`, built from FaceInputs."""
    from tqdm import tqdm

    from unmask.inference.predictor import FaceInput, Scores

    if crops is None:
        crops = load_crops(list(df["abs_path"]), progress)
    lms = row_landmarks(df)
    sides = row_box_sides(df)
    specs = predictor.needs.tiles
    probas, drivers, members = [], [], []
    bar = tqdm(
        total=len(crops), desc=f"score {perturbation.name}", unit="img", disable=not progress
    )
    for i in range(0, len(crops), batch_size):
        part = df.iloc[i : i + batch_size]
        tiles, sizes = (
            row_tiles(part, specs, perturbation, seed + i)
            if specs
            else ([{}] * len(part), [None] * len(part))
        )
        faces = [
            FaceInput(
                apply(c, perturbation, seed + i + j), lm, t, None if np.isnan(side) else side, size
            )
            for j, (c, lm, t, side, size) in enumerate(
                zip(
                    crops[i : i + batch_size],
                    lms[i : i + batch_size],
                    tiles,
                    sides[i : i + batch_size],
                    sizes,
                    strict=True,
                )
            )
        ]
        s = predictor.predict(faces)
        probas.append(np.asarray(s.proba, dtype=np.float64))
        drivers.extend(s.driver)
        members.append(s.members)
        bar.update(len(faces))
    bar.close()
    if not probas:
        return Scores(np.zeros((0, len(predictor.classes))), [])
    names = members[0].keys() if members else ()
    return Scores(
        np.concatenate(probas), drivers, {n: np.concatenate([m[n] for m in members]) for n in names}
    )


def score_rows(
    predictor: Any,
    df: Any,
    perturbation: Perturbation = NONE,
    crops: list[np.ndarray] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    feature_cache: str | Path | None = None,
) -> np.ndarray:
    """(N, C) probabilities for the rows of `df`, crops perturbed first."""
    if perturbation == NONE and crops is None and uses_feature_cache(predictor):
        from unmask.features.extract import extract_files

        feats = extract_files(
            list(df["abs_path"]),
            predictor.kind,
            predictor.size,
            cache_dir=feature_cache,
            progress=progress,
            desc="features",
        )
        return predictor.predict_proba_features(feats)
    return score_row_faces(predictor, df, perturbation, crops, batch_size, seed, progress).proba


def uses_feature_cache(predictor: Any) -> bool:
    """Classical models score clean crops from cached features (no crops decoded)."""
    return predictor.meta.get("kind") == "classical"
