"""Shared plumbing for `unmask synth`: images, per-row seeds, the output manifest, sheets.

Output folder layout (`OUT_DIR`):
    manifest.csv     the input rows (paths rewritten relative to OUT_DIR, files not copied)
                     followed by the synthetic rows; extra columns `mask` and `synth_params`
    prepare.json     copied from the input manifest's folder
    synth.json       what was run: method, options, counts, timings
    skipped.csv      real rows that could not be used (path, reason), when any
    <method>/...     the synthetic crops (PNG) and masks (`*_mask.png`)
    sheet-*.png      contact sheets
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.data.manifest import COLUMNS, MANIFEST_NAME, SPEC_NAME
from unmask.errors import UnmaskError

EXTRA_COLUMNS: tuple[str, ...] = ("mask", "synth_params")
PATH_COLUMNS: tuple[str, ...] = ("path", "landmarks", "mask")


def row_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator per (seed, row, copy): results do not depend on order."""
    return np.random.default_rng([int(seed), *map(int, keys)])


def load_rgb(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); raises an UnmaskError (BadInputError) for unreadable files."""
    from unmask.data.manifest import load_crop

    return load_crop(path)


def save_png(path: str | Path, array: np.ndarray) -> None:
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")


def load_landmarks(path: str | Path) -> np.ndarray:
    """(N, 2|3) float landmarks in crop coordinates / crop size; UnmaskError when unusable."""
    if not path or not Path(path).is_file():
        raise UnmaskError(f"{path or '(none)'}: landmarks missing")
    try:
        lm = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UnmaskError(f"{path}: cannot read landmarks ({exc.__class__.__name__})") from None
    if lm.ndim != 2 or lm.shape[0] < 3 or lm.shape[1] < 2 or not np.isfinite(lm[:, :2]).all():
        raise UnmaskError(f"{path}: landmarks have shape {lm.shape} or non-finite values")
    return lm.astype(np.float32)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def read_input(manifest: str | Path, out_dir: str | Path):
    """(DataFrame of all input rows, input folder, spec dict or None); checks OUT_DIR != input."""
    from unmask.data.manifest import manifest_path, read_manifest

    src = manifest_path(manifest)
    df = read_manifest(src)
    out = Path(out_dir).resolve()
    if out == src.parent.resolve():
        raise UnmaskError(f"output folder {out} is the input manifest's folder; choose another -o")
    spec = None
    spec_file = src.parent / SPEC_NAME
    if spec_file.is_file():
        try:
            spec = json.loads(spec_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            spec = None
    return df, src.parent, spec


def real_rows(df, splits: Sequence[str] | None = None, manifest: Any = ""):
    """The `real` rows (optionally of some splits); UnmaskError when there are none."""
    sel = df[df["label"] == "real"]
    if splits:
        sel = sel[sel["split"].isin(list(splits))]
    if len(sel) == 0:
        where = f" in split(s) {', '.join(splits)}" if splits else ""
        raise UnmaskError(f"{manifest}: no real rows{where} to synthesise from")
    return sel


def crop_size_of(spec: dict | None, default: int) -> int:
    spec = spec or {}
    if isinstance(spec.get("preprocess"), dict):  # prepare.json nests the PreprocessSpec
        spec = spec["preprocess"]
    try:
        return int(spec.get("crop_size", default))
    except (TypeError, ValueError):
        return default


def _rel(p: str, root: Path, out: Path) -> str:
    if not p:
        return p
    return os.path.relpath(root / p, out).replace(os.sep, "/")


def rebase_rows(df, root: Path, out: Path) -> list[dict[str, Any]]:
    """Input rows as dicts with path-like columns made relative to `out`."""
    rows = []
    cols = [c for c in df.columns if c not in ("abs_path", "abs_landmarks")]
    for rec in df[cols].to_dict("records"):
        for c in PATH_COLUMNS:
            if c in rec and isinstance(rec[c], str):
                rec[c] = _rel(rec[c], root, out)
        parent = rec.get("parent")
        if isinstance(parent, str) and parent:
            rec["parent"] = ";".join(
                _rel(q, root, out) if (root / q).exists() else q for q in parent.split(";")
            )
        rows.append(rec)
    return rows


def synthetic_row(parent_row: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """A manifest row for a synthetic crop; split/group/boxes inherited from the parent row."""
    row: dict[str, Any] = {c: "" for c in (*COLUMNS, *EXTRA_COLUMNS)}
    if parent_row is not None:
        for c in (
            "split",
            "group",
            "original",
            "frame",
            "face_index",
            "box_x0",
            "box_y0",
            "box_x1",
            "box_y1",
        ):
            row[c] = parent_row.get(c, "")
    else:
        row.update(frame=-1, face_index=0)
    row["det_score"] = ""
    params = fields.pop("synth_params", {})
    row["synth_params"] = json.dumps(params, sort_keys=True, separators=(",", ":"))
    row.update(fields)
    return row


def write_output(
    out: Path,
    input_rows: list[dict[str, Any]],
    synth_rows: list[dict[str, Any]],
    in_root: Path,
    info: dict[str, Any],
    skipped: Iterable[tuple[str, str]] = (),
) -> Path:
    """Write manifest.csv (input rows + synthetic rows), prepare.json, synth.json, skipped.csv."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(input_rows + synth_rows)
    order = [c for c in (*COLUMNS, *EXTRA_COLUMNS) if c in df.columns]
    order += [c for c in df.columns if c not in order]
    for c in EXTRA_COLUMNS:
        if c not in df.columns:
            df[c] = ""
            order.append(c)
    df = df[order].fillna("")
    path = out / MANIFEST_NAME
    df.to_csv(path, index=False)
    spec = in_root / SPEC_NAME
    if spec.is_file():
        shutil.copyfile(spec, out / SPEC_NAME)
    skipped = list(skipped)
    if skipped:
        pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(out / "skipped.csv", index=False)
    info = dict(
        info, input_rows=len(input_rows), synthetic_rows=len(synth_rows), skipped=len(skipped)
    )
    (out / "synth.json").write_text(
        json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path


def contact_sheet(
    columns: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str],
    path: str | Path,
    suptitle: str = "",
    tile: int = 128,
) -> Path:
    """A PNG grid: one row per example, one column per entry of `columns` (equal lengths).
    Masks (2-D float/uint8) are shown in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(c) for c in columns)
    k = len(columns)
    fig, axes = plt.subplots(n, k, figsize=(1.6 * k, 1.6 * n + 0.4), squeeze=False)
    for i in range(n):
        for j in range(k):
            ax = axes[i][j]
            img = np.asarray(columns[j][i])
            if img.ndim == 2:
                ax.imshow(
                    resize(img.astype(np.float32), tile),
                    cmap="gray",
                    vmin=0,
                    vmax=1 if img.dtype != np.uint8 else 255,
                )
            else:
                ax.imshow(resize(img, tile))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def image_grid(images: Sequence[np.ndarray], ncol: int = 8) -> np.ndarray:
    """Tile equally sized RGB uint8 images into one array (2 px black gutters)."""
    n = len(images)
    h, w = images[0].shape[:2]
    nrow = (n + ncol - 1) // ncol
    grid = np.zeros((nrow * (h + 2) + 2, ncol * (w + 2) + 2, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, ncol)
        grid[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + c * (w + 2) : 2 + c * (w + 2) + w] = im
    return grid
