"""Score manifest rows with any predictor: eval's rows -> `Face`s -> scores.

    proba = score_rows(predictor, df, perturbation)        # (N, C)
    scores = score_row_faces(predictor, df)                 # Scores (proba, driver)

A row's `Face` is made by `unmask.data.extract.face_from_row`: its crop (`path`) and
landmarks; for a model whose input is native-pixel tiles (`predictor.needs.tiles`) also the
tiles cut from the row's decoded `original` (its frame, for a video) in its square crop box
(`box_x0..box_y1`), decoded once per row and never cached on disk.
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


def row_image_sizes(df: Any) -> list[tuple[int, int] | None]:
    """Each row's original (w, h) as prepare recorded it; None where unknown."""
    from unmask.data.extract import row_image_size

    return [row_image_size(r) for r in df.to_dict("records")]


def score_row_faces(
    predictor: Any,
    df: Any,
    perturbation: Perturbation = NONE,
    crops: list[np.ndarray] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """`Scores` (proba, driver per row) for the rows of `df`: one `Face` per row, the
    perturbation applied to its crop and its original alike (seed `seed` + row)."""
    from tqdm import tqdm

    from unmask.inference.predictor import Scores

    if crops is None:
        crops = load_crops(list(df["abs_path"]), progress)
    specs = predictor.needs.tiles
    missing = [c for c in ("original", *BOX_COLUMNS) if c not in df.columns]
    if specs and missing:
        raise UnmaskError(f"manifest lacks {', '.join(missing)}: tile models need the originals")
    rows = df.to_dict("records")
    probas, drivers, members = [], [], []
    bar = tqdm(
        total=len(crops), desc=f"score {perturbation.name}", unit="img", disable=not progress
    )
    for i in range(0, len(crops), batch_size):
        faces = [
            _row_face(rows[k], crops[k], specs, perturbation, seed + k)
            for k in range(i, min(i + batch_size, len(crops)))
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


def _row_face(row: Any, crop: np.ndarray, specs, perturbation: Perturbation, seed: int) -> Any:
    from unmask.data.extract import face_from_row

    def perturb(image: np.ndarray) -> np.ndarray:
        return apply(image, perturbation, seed)

    try:
        return face_from_row(row, specs, crop=perturb(crop), transform=perturb)
    except BadInputError as exc:
        raise UnmaskError(f"row {row['path']}: original {exc}") from None


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
    from unmask.inference.loader import predictor_kind

    return predictor_kind(predictor).feature_cache
