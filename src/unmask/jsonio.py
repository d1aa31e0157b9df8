"""The one JSON cleaner: every JSON the project writes (model.json, reports, `detect --json`,
server responses) goes through `json_clean`, so NaN and infinities become `null` and NumPy
values become plain numbers. `json.dumps(allow_nan=False)` then guarantees valid JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


def json_clean(obj: Any) -> Any:
    """A copy of `obj` that `json.dumps(..., allow_nan=False)` accepts: NaN/inf -> None,
    NumPy scalars/arrays -> Python numbers/lists, tuples -> lists, Paths -> str,
    dataclasses -> their fields."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json_clean(dataclasses.asdict(obj))
    tolist = getattr(obj, "tolist", None)  # NumPy scalar or array
    if callable(tolist):
        return json_clean(tolist())
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` of the cleaned object; never emits NaN/Infinity."""
    return json.dumps(json_clean(obj), allow_nan=False, **kwargs)
