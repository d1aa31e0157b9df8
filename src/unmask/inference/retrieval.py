"""Nearest known faces: a FAISS index of detector embeddings with each item's label/source.

Use case: "which known generator or source does this image look like?". Embeddings are the
detector's penultimate features (spectrum features for classical models), L2-normalised so
inner product = cosine similarity. Flat (exact) search by default; IVF for large sets.

Index folder:  index.faiss (FAISS's own binary format: no code runs on load),
               items.csv (path, label, source, split), index.json (model, dims, kind).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unmask.errors import UnmaskError

INDEX_FILE, ITEMS_FILE, META_FILE = "index.faiss", "items.csv", "index.json"


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UnmaskError("retrieval needs FAISS: pip install 'unmask[index]'") from None
    return faiss


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def embed_rows(predictor, rows, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Embeddings of manifest rows (DataFrame with abs_path / abs_landmarks), batched."""
    from tqdm import tqdm

    from unmask.data.manifest import load_crop, load_landmarks

    out = []
    has_lm = "abs_landmarks" in rows.columns
    for s in tqdm(
        range(0, len(rows), batch_size), disable=not progress, unit="batch", desc="embedding"
    ):
        chunk = rows.iloc[s : s + batch_size]
        crops = [load_crop(p) for p in chunk["abs_path"]]
        lms = [load_landmarks(p) for p in chunk["abs_landmarks"]] if has_lm else None
        out.append(predictor.embed(crops, lms))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def build_index(embeddings: np.ndarray, ivf_lists: int = 0):
    faiss = _faiss()
    x = l2_normalise(embeddings)
    d = x.shape[1]
    if ivf_lists and len(x) >= 39 * ivf_lists:  # FAISS wants ~39 points per centroid
        quant = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quant, d, ivf_lists, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.nprobe = max(1, ivf_lists // 8)
    else:
        index = faiss.IndexFlatIP(d)
    index.add(x)
    return index


def save_index(out_dir: Path, index, items: list[dict], meta: dict) -> None:
    faiss = _faiss()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        faiss.write_index(index, str(out_dir / INDEX_FILE))
    except RuntimeError as exc:  # FAISS reports a full disk or a failed write this way
        from unmask.errors import UnmaskError

        (out_dir / INDEX_FILE).unlink(missing_ok=True)  # no half-written index left behind
        why = "no space left on device" if "space" in str(exc).lower() else "write failed"
        raise UnmaskError(f"cannot write {out_dir / INDEX_FILE}: {why}") from None
    with open(out_dir / ITEMS_FILE, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "source", "split"])
        w.writeheader()
        w.writerows({k: it.get(k, "") for k in w.fieldnames} for it in items)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


@dataclass
class LoadedIndex:
    index: object
    items: list[dict]
    meta: dict

    def search(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self.items))
        return self.index.search(l2_normalise(embeddings), k)


def load_index(path: str | Path) -> LoadedIndex:
    faiss = _faiss()
    p = Path(path)
    if not (p / INDEX_FILE).is_file() or not (p / ITEMS_FILE).is_file():
        raise UnmaskError(f"{p} is not an unmask index folder (run `unmask index` first)")
    try:
        meta = json.loads((p / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        raise UnmaskError(f"{p / META_FILE}: missing or not valid JSON") from None
    with open(p / ITEMS_FILE, newline="") as fh:
        items = list(csv.DictReader(fh))
    try:
        index = faiss.read_index(str(p / INDEX_FILE))
    except RuntimeError:
        raise UnmaskError(f"{p / INDEX_FILE}: not a readable FAISS index") from None
    if index.ntotal != len(items):
        raise UnmaskError(f"{p}: index has {index.ntotal} vectors but {len(items)} items")
    return LoadedIndex(index, items, meta)


def knn_vote(neighbour_ids: np.ndarray, items: list[dict], key: str) -> list[str]:
    """Majority `key` (label or source) among each query's neighbours; ties go to the
    nearest neighbour's value."""
    out = []
    for row in neighbour_ids:
        vals = [items[i][key] for i in row if i >= 0]
        if not vals:
            out.append("")
            continue
        counts: dict[str, int] = {}
        for v in vals:
            counts[v] = counts.get(v, 0) + 1
        best = max(counts.values())
        out.append(next(v for v in vals if counts[v] == best))
    return out


def contact_sheet(
    query: np.ndarray, neighbours: list[tuple[np.ndarray, str]], path: Path, tile: int = 128
) -> None:
    """Query face first (framed), then each neighbour with its caption, in a PNG."""
    from PIL import Image, ImageDraw

    n = len(neighbours) + 1
    cols = min(n, 6)
    rows = (n + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile, rows * (tile + 28)), "white")
    draw = ImageDraw.Draw(sheet)
    tiles = [(query, "query")] + neighbours
    for i, (img, caption) in enumerate(tiles):
        x, y = (i % cols) * tile, (i // cols) * (tile + 28)
        sheet.paste(Image.fromarray(img).resize((tile, tile)), (x, y))
        if i == 0:
            draw.rectangle([x, y, x + tile - 1, y + tile - 1], outline=(0, 90, 220), width=3)
        for j, line in enumerate(caption.split("\n")[:2]):
            draw.text((x + 3, y + tile + 2 + 12 * j), line[:24], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
