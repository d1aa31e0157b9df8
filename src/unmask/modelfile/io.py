"""The one reader and the one writer of `model.json`, and the migration from format 1.

    model = read_saved_model(folder)        # SavedModel, or one-line UnmaskError
    write_saved_model(folder, model)        # validated, NaN-free JSON
    member_dir(folder, name)                # members/<name>/ of a composite, inside folder

Reading never follows a link out of the folder, caps the file size before reading it, and
builds nothing: it is safe on a hostile folder.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from unmask.errors import ConfigError, UnmaskError
from unmask.modelfile.schema import MODEL_FORMAT, SavedModel

MODEL_JSON = "model.json"
WEIGHTS_FILE = "weights.safetensors"
MEMBERS_DIR = "members"
CARD_FILE = "card.md"
LEGACY_FORMAT = "unmask-model/1"
MAX_MODEL_JSON_BYTES = 2 * 1024 * 1024
REEXPORT = "re-train it (`unmask train CONFIG`) or re-compose it (`unmask compose`)"


def inside(folder: str | Path, rel: str) -> Path:
    """`folder/rel`, refusing anything (a link, `..`) that resolves outside `folder`."""
    root = Path(folder).resolve()
    p = (root / rel).resolve()
    if p != root and root not in p.parents:
        raise UnmaskError(f"{Path(folder) / rel}: points outside the model folder; refused")
    return p


def member_dir(folder: str | Path, name: str) -> Path:
    return inside(folder, f"{MEMBERS_DIR}/{name}")


def weights_path(folder: str | Path) -> Path:
    p = inside(folder, WEIGHTS_FILE)
    if not p.is_file():
        if p.exists():  # a FIFO, device or folder under that name: never opened
            raise UnmaskError(f"{folder}: {WEIGHTS_FILE} is not a regular file")
        raise UnmaskError(f"{folder}: {WEIGHTS_FILE} missing")
    return p


def parse_saved_model(data: Any, where: str = MODEL_JSON) -> SavedModel:
    """A decoded model.json (format 2, or format 1 migrated) -> SavedModel, or one line."""
    from unmask.config import from_dict

    if not isinstance(data, dict):
        raise UnmaskError(f"{where}: top level must be a JSON object")
    fmt = data.get("format")
    if fmt == LEGACY_FORMAT:
        data = migrate_v1(data, where)
    elif fmt != MODEL_FORMAT:
        raise UnmaskError(f"{where}: unsupported model format {str(fmt)[:40]!r}")
    data = _with_later_keys(data)
    try:
        return from_dict(SavedModel, data, strict=True)
    except ConfigError as exc:
        raise UnmaskError(f"{where}: {exc}") from None
    except RecursionError:
        raise UnmaskError(f"{where}: nested too deeply") from None


# Keys added to format 2 after it shipped, with the value that means "not used": a file
# written before them still reads the same. Every other key must be present.
LATER_MEMBER_KEYS = {"size_edges": [], "size_a": [], "size_b": []}


def _with_later_keys(data: dict[str, Any]) -> dict[str, Any]:
    fusion = data.get("fusion")
    members = fusion.get("members") if isinstance(fusion, dict) else None
    if not isinstance(members, list):
        return data
    filled = [{**LATER_MEMBER_KEYS, **m} if isinstance(m, dict) else m for m in members]
    return {**data, "fusion": {**fusion, "members": filled}}


def read_saved_model(folder: str | Path) -> SavedModel:
    d = Path(folder)
    if not d.exists():
        raise UnmaskError(f"model not found: {d}")
    if not d.is_dir():
        raise UnmaskError(f"{d} is not an unmask model folder")
    path = inside(d, MODEL_JSON)
    if not path.is_file():
        raise UnmaskError(f"{d} is not an unmask model folder (no {MODEL_JSON})")
    size = path.stat().st_size
    if size > MAX_MODEL_JSON_BYTES:
        raise UnmaskError(f"{path}: {size} bytes; a model.json is at most {MAX_MODEL_JSON_BYTES}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnmaskError(f"{path}: not valid JSON") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits (Python's int limit)
        raise UnmaskError(f"{path}: not valid JSON ({str(exc)[:80]})") from None
    except RecursionError:
        raise UnmaskError(f"{path}: nested too deeply") from None
    return parse_saved_model(data, str(path))


def model_to_json(model: SavedModel) -> dict[str, Any]:
    """The JSON object the writer stores (also `predictor.meta`): plain, NaN-free."""
    from unmask.jsonio import json_clean

    return json_clean(dataclasses.asdict(model))


def write_saved_model(folder: str | Path, model: SavedModel) -> Path:
    """Write `model.json` for `model` (validated again by reading it back)."""
    from unmask.jsonio import dumps

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    text = dumps(model_to_json(model), indent=2) + "\n"
    parse_saved_model(json.loads(text), str(d / MODEL_JSON))  # what we write, we can read
    path = d / MODEL_JSON
    path.write_text(text, encoding="utf-8")
    return path


def new_saved_model(**fields: Any) -> SavedModel:
    """A SavedModel with the format and version filled in and informational fields
    defaulted; values are validated exactly as the reader does (via JSON)."""
    from unmask import __version__
    from unmask.jsonio import json_clean

    base: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "unmask_version": __version__,
        "id": "",
        "input": None,
        "features": None,
        "head": None,
        "fusion": None,
        "metrics": {},
        "training": {},
        "class_profiles": {},
        "profile_size": 0,
    }
    data = json_clean({**base, **{k: _plain(v) for k, v in fields.items()}})
    return parse_saved_model(data, "model")


def _plain(v: Any) -> Any:
    return dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v


# --- format 1 -> 2 ---------------------------------------------------------------------
_V1_TORCH = {"format", "unmask_version", "id", "kind", "detector", "classes", "preprocess"}
_V1_TORCH |= {"input", "threshold", "threshold_rule", "config", "metrics", "training"}
_V1_CLASSICAL = {"format", "unmask_version", "id", "kind", "detector", "detector_kwargs"}
_V1_CLASSICAL |= {"class_weight", "classes", "preprocess", "threshold", "threshold_rule"}
_V1_CLASSICAL |= {"selection", "metrics", "data", "notes", "class_profiles", "profile_size"}
_V1_CLASSICAL |= {"train_seconds", "config", "input", "head"}


def migrate_v1(data: dict[str, Any], where: str = MODEL_JSON) -> dict[str, Any]:
    """An `unmask-model/1` model.json (two shapes: CNN and classical) -> format 2 data.
    Weights are unchanged; anything that does not fit fails with how to re-export."""

    def fail(why: str) -> UnmaskError:
        return UnmaskError(f"{where}: {LEGACY_FORMAT} model cannot be migrated ({why}); {REEXPORT}")

    kind = data.get("kind")
    known = {"torch": _V1_TORCH, "classical": _V1_CLASSICAL}.get(kind)  # type: ignore[arg-type]
    if known is None:
        raise fail(f"kind {str(kind)[:20]!r}")
    extra = sorted(set(data) - known)
    if extra:
        raise fail(f"unknown key(s) {', '.join(map(str, extra))[:80]}")
    out: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "unmask_version": data.get("unmask_version", ""),
        "id": data.get("id", ""),
        "kind": kind,
        "classes": data.get("classes"),
        "preprocess": data.get("preprocess"),
        "threshold": data.get("threshold"),
        "threshold_rule": data.get("threshold_rule", ""),
        "metrics": data.get("metrics") or {},
        "fusion": None,
        "class_profiles": data.get("class_profiles") or {},
        "profile_size": data.get("profile_size", 0),
    }
    inp = data.get("input")
    if not isinstance(inp, dict):
        raise fail("no input section")
    if kind == "torch":
        det = data.get("detector")
        if not isinstance(det, dict):
            raise fail("detector is not a mapping")
        out["detector"] = {
            "name": det.get("name"),
            "family": det.get("family", "cnn"),
            "kwargs": det.get("kwargs") or {},
        }
        out["input"] = {
            "size": inp.get("size"),
            "mean": inp.get("mean"),
            "std": inp.get("std"),
            "landmarks": inp.get("landmarks", False),
            "tiles": None,
            "resize": inp.get("resize", "PIL bilinear"),
        }
        out.update(features=None, head=None)
        training = dict(data.get("training") or {})
        training["config"] = data.get("config") or {}
        out["training"] = training
    else:
        out["detector"] = {
            "name": data.get("detector"),
            "family": "classical",
            "kwargs": data.get("detector_kwargs") or {},
        }
        out["input"] = None
        out["features"] = {"kind": inp.get("features"), "size": inp.get("feature_size")}
        head = data.get("head")
        if not isinstance(head, dict):
            raise fail("no head section")
        out["head"] = {
            "type": head.get("type"),
            "link": head.get("link"),
            "classes": head.get("classes"),
            "classifier": head.get("classifier", ""),
            "kernel": head.get("kernel", ""),
            "n_estimators": head.get("n_estimators", 0),
        }
        out["training"] = {
            k: data[k]
            for k in ("class_weight", "selection", "data", "notes", "train_seconds", "config")
            if k in data
        }
    return out
