"""The saved-model folder as inference code sees it (the format is `unmask.modelfile`).

    meta = read_model_json(folder)   # validated model.json as a plain dict (format 2)
    default_model_dir()              # the model that ships inside the package

`read_model_json` goes through the one strict reader (`unmask.modelfile.read_saved_model`),
so a hostile or broken folder fails here, in one line, before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unmask.modelfile import (  # noqa: F401  (the folder's file names, for callers)
    MODEL_JSON,
    WEIGHTS_FILE,
    default_model_dir,
    model_to_json,
    read_saved_model,
)


def read_model_json(model_dir: str | Path) -> dict[str, Any]:
    return model_to_json(read_saved_model(model_dir))


def detector_label(meta: dict[str, Any]) -> str:
    """A short human name for a model's detector: `dct-ridge`, `timm/resnet10t`,
    `composite(artifact+blend)`. (Stand-in predictors in tests name it with a string.)"""
    det = meta.get("detector")
    if not isinstance(det, dict):
        return str(det)
    name = str(det.get("name", "?"))
    backbone = (det.get("kwargs") or {}).get("backbone")
    if name == "composite":
        members = (meta.get("fusion") or {}).get("members") or []
        return f"composite({'+'.join(str(m.get('name')) for m in members)})"
    return f"{name}/{backbone}" if backbone else name
