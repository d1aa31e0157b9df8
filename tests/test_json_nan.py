"""NaN never reaches a JSON file or response: the one cleaner (`unmask.jsonio`) is used by
detect --json, the server, reports and model.json."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from unmask.jsonio import dumps, json_clean


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_clean_turns_nan_and_inf_into_null():
    doc = {
        "a": math.nan,
        "b": [math.inf, -math.inf, 1.5],
        "c": np.float32("nan"),
        "d": np.arange(2),
    }
    assert _strict(dumps(doc)) == {"a": None, "b": [None, None, 1.5], "c": None, "d": [0, 1]}
    with pytest.raises(TypeError):
        json_clean(object())


def _nan_model():
    """A stand-in whose P(fake) is NaN (a broken model): the JSON must still be valid."""
    from doubles.serving import BrightnessPredictor
    from unmask.data.spec import PreprocessSpec

    class Nan(BrightnessPredictor):
        def predict_proba(self, crops, landmarks=None):
            return np.full((len(crops), 2), np.nan)

    return Nan(spec=PreprocessSpec(crop_size=64, keep_whole=True))


def test_detect_json_and_server_never_write_nan(tmp_path):
    from fastapi.testclient import TestClient
    from PIL import Image

    from unmask.inference.detect import detect_paths
    from unmask.inference.sinks import JsonDocument
    from unmask.serving.app import create_app

    img = (np.random.default_rng(0).integers(0, 255, (48, 48, 3))).astype(np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    pred = _nan_model()
    out = io.StringIO()
    w = JsonDocument(out, 1, {"threshold": math.nan})
    for res in detect_paths([path], pred, workers=1):
        w.write(res)
    w.finish({"nan": math.nan})
    doc = _strict(out.getvalue())
    # a score that is not a number gives no verdict (issue 24: NaN weights read "real")
    res = doc["results"][0]
    assert res["status"] == "error" and res["reason"] == "score_not_finite"
    assert res["verdict"] == "error" and not res["faces"]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    with TestClient(create_app(pred)) as c:
        r = c.post("/v1/detect", files={"file": ("x.png", buf.getvalue(), "image/png")})
        body = _strict(r.text)
        assert body["result"]["verdict"] == "error"
        assert body["result"]["reason"] == "score_not_finite"
        assert _strict(c.get("/v1/models").text)["models"][0]["threshold"] == 0.5
