"""The saved-model folder: one format for every detector, loaded without running code.

    MODEL_DIR/
      model.json          format, kind, detector name + kwargs, classes, preprocess spec
                          (PreprocessSpec fields), input spec (size, mean, std, dct stats
                          file), threshold and how it was chosen, resolved training config,
                          validation/test metrics, unmask version
      weights.safetensors tensors: CNN state dict (kind "torch") or pipeline arrays
                          (kind "classical"); safetensors never executes code on load
      card.md             optional human-readable model card

`read_model_json` validates the header; `load_predictor` (in `unmask.inference.predictor`)
turns the folder into something that scores face crops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError

MODEL_FORMAT = "unmask-model/1"
MODEL_JSON = "model.json"
WEIGHTS_FILE = "weights.safetensors"


def write_model_json(model_dir: str | Path, meta: dict[str, Any]) -> Path:
    from unmask import __version__

    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    meta = {"format": MODEL_FORMAT, "unmask_version": __version__, **meta}
    for key in ("kind", "detector", "classes", "preprocess"):
        if key not in meta:
            raise ValueError(f"model.json needs {key!r}")
    path = d / MODEL_JSON
    path.write_text(json.dumps(meta, indent=2, sort_keys=False, default=_json_default) + "\n")
    return path


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def read_model_json(model_dir: str | Path) -> dict[str, Any]:
    d = Path(model_dir)
    path = d / MODEL_JSON
    if not d.exists():
        raise UnmaskError(f"model not found: {d}")
    if not path.is_file():
        raise UnmaskError(f"{d} is not an unmask model folder (no {MODEL_JSON})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnmaskError(f"{path}: not valid JSON") from None
    if meta.get("format") != MODEL_FORMAT:
        raise UnmaskError(f"{path}: unsupported model format {meta.get('format')!r}")
    return meta


def default_model_dir() -> Path:
    """The small model that ships inside the package (see its model card)."""
    from importlib.resources import files

    return Path(str(files("unmask") / "assets" / "default_model"))


def detector_label(meta: dict[str, Any]) -> str:
    """A short human name for a model's detector: `dct-ridge`, `timm/resnet10t`.
    (Classical models store the name as a string, CNNs as {name, kwargs}.)"""
    det = meta.get("detector")
    if isinstance(det, dict):
        name = str(det.get("name", "?"))
        backbone = (det.get("kwargs") or {}).get("backbone")
        return f"{name}/{backbone}" if backbone else name
    return str(det)
