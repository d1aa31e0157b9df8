"""How a saved model reaches the workers: the driver reads the model folder (model.json,
weights.safetensors, member folders of composite models) into the object store once; each
model actor writes it to a private temporary folder and loads it with `load_predictor`, as
the local engine does. Workers need no shared file system for models, and a model file is
still only JSON and safetensors (nothing in it runs)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError

MAX_MODEL_BYTES = 2 * 1024**3


def read_model_folder(model_dir: str | Path) -> dict[str, bytes]:
    """{relative path: bytes} of every regular file under `model_dir` (no links followed)."""
    root = Path(model_dir)
    if not root.is_dir():
        raise UnmaskError(f"model folder not found: {root}")
    files: dict[str, bytes] = {}
    total = 0
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            raise UnmaskError(f"{p}: a link inside the model folder; copy the file instead")
        if p.is_file():
            total += p.stat().st_size
            if total > MAX_MODEL_BYTES:
                raise UnmaskError(f"{root}: model folder over {MAX_MODEL_BYTES >> 30} GiB")
            files[p.relative_to(root).as_posix()] = p.read_bytes()
    return files


def ship_model(model_dir: str | Path) -> Any:
    """The model folder in Ray's object store (an ObjectRef for the actors)."""
    from unmask.cluster.session import ensure_ray

    return ensure_ray().put(read_model_folder(model_dir))


def load_shipped(
    files: dict[str, bytes],
    device: str = "cpu",
    threshold: float | None = None,
    runtime: str | None = None,
):
    """A predictor from a shipped folder (in a worker). The copy lives as long as the worker
    process (a predictor may read a member's files lazily)."""
    from unmask.inference.loader import load_predictor

    tmp = Path(tempfile.mkdtemp(prefix="unmask-model-"))
    atexit.register(shutil.rmtree, tmp, True)
    for rel, data in files.items():
        dest = (tmp / rel).resolve()
        if tmp.resolve() not in dest.parents:
            raise UnmaskError(f"model file {rel!r} points outside its folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    predictor = load_predictor(tmp, device=device, runtime=runtime)
    if threshold is not None:
        predictor.threshold = float(threshold)
    return predictor
