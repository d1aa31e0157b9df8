"""DATA arguments: a manifest, or a folder/files that are prepared on the fly with a model's
own preprocessing spec (so crops match training exactly)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from unmask.data.spec import PreprocessSpec
from unmask.errors import UnmaskError


def spec_from_meta(meta: dict) -> PreprocessSpec:
    return PreprocessSpec(**meta.get("preprocess", {}))


def rows_for(data: str | Path, spec: PreprocessSpec, split: str | None, cache_root: Path,
             progress: bool = True):
    """Manifest rows for DATA: read a manifest directly (one split, or all when `split` is
    None), or prepare a folder into `cache_root/<hash>` with every row in split 'test'."""
    from unmask.data.manifest import MANIFEST_NAME, read_manifest

    p = Path(data)
    if not p.exists():
        raise UnmaskError(f"not found: {p}")
    if p.suffix == ".csv" and p.name != "labels.csv" or (p / MANIFEST_NAME).is_file():
        return read_manifest(p, split)
    from unmask.data.prepare import prepare

    key = hashlib.sha1(
        (str(p.resolve()) + json.dumps(asdict(spec), sort_keys=True)).encode()
    ).hexdigest()[:12]
    out = cache_root / f"prepared-{key}"
    res = prepare(p, out, spec, assign_split="test", progress=progress)
    return read_manifest(res.manifest_path)
