"""Feature extraction for many image files: parallel, with an on-disk cache.

    feats = extract_files(paths, kind="dct", size=256, cache_dir=root / ".cache" / "features")

Each file's features are stored as one `.npy` (float32, loaded with allow_pickle=False) named
by a hash of (absolute path, mtime_ns, file size, feature kind, feature size, version), so a
changed file or different settings never reuse a stale entry. Work is spread over `jobs`
processes (spawned, so it is safe after torch was imported) with a tqdm progress bar.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unmask.features.frequency import feature_dim, image_features

CACHE_VERSION = 1  # bump when feature code changes meaning


def cache_key(path: str | Path, kind: str, size: int) -> str:
    p = Path(path).resolve()
    st = p.stat()
    raw = f"v{CACHE_VERSION}|{p}|{st.st_mtime_ns}|{st.st_size}|{kind}|{size}"
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()


def load_rgb(path: str | Path) -> np.ndarray:
    """A crop file -> RGB uint8 (see `unmask.data.manifest.load_crop`)."""
    from unmask.data.manifest import load_crop

    return load_crop(path)


def _one(args: tuple[str, str, int, str | None]) -> np.ndarray:
    path, kind, size, cache_file = args
    feat = image_features(load_rgb(path), kind, size)
    if cache_file:
        tmp = f"{cache_file}.{os.getpid()}.tmp.npy"
        np.save(tmp, feat, allow_pickle=False)
        os.replace(tmp, cache_file)
    return feat


def usable_cache_dir(cache_dir: str | Path | None) -> Path | None:
    """`cache_dir` if it takes files, else the user's cache folder, else None (no cache):
    the cache only saves time, so a read-only data set must not make a run fail."""
    import tempfile

    if not cache_dir:
        return None
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unmask" / "features"
    for d in (Path(cache_dir), user):
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=d):
                pass
            return d
        except OSError:
            continue
    return None


def extract_files(
    paths: Sequence[str | Path],
    kind: str,
    size: int,
    cache_dir: str | Path | None = None,
    jobs: int = 2,
    progress: bool = True,
    desc: str | None = None,
) -> np.ndarray:
    """(N, D) float32 features of the image files `paths`, in order."""
    from tqdm import tqdm

    n = len(paths)
    out = np.empty((n, feature_dim(kind, size)), dtype=np.float32)
    todo: list[tuple[int, tuple[str, str, int, str | None]]] = []
    cdir = usable_cache_dir(cache_dir)
    for i, p in enumerate(paths):
        cache_file = None
        if cdir is not None:
            cache_file = str(cdir / f"{cache_key(p, kind, size)}.npy")
            if os.path.exists(cache_file):
                try:
                    arr = np.load(cache_file, allow_pickle=False)
                    if arr.shape == out.shape[1:]:
                        out[i] = arr
                        continue
                except (OSError, ValueError):
                    pass  # a truncated entry: recompute it
        todo.append((i, (str(p), kind, size, cache_file)))
    if not todo:
        return out
    bar = tqdm(total=len(todo), desc=desc or f"{kind} features", unit="img", disable=not progress)
    try:
        if jobs > 1 and len(todo) >= 64:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            from unmask.data.workers import die_with_parent

            with ProcessPoolExecutor(
                jobs,
                mp_context=mp.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            ) as ex:
                it = ex.map(_one, [a for _, a in todo], chunksize=16)
                for (i, _), feat in zip(todo, it, strict=True):
                    out[i] = feat
                    bar.update(1)
        else:
            for i, a in todo:
                out[i] = _one(a)
                bar.update(1)
    finally:
        bar.close()
    return out
