"""The saved-model contract: one strict schema, hostile folders refused in one line before
any network access or read outside the folder, format 1 migrated, random JSON never a
traceback."""

from __future__ import annotations

import json
import math
import resource
import shutil
import socket
import sys
from pathlib import Path

import pytest

from unmask.cli import main
from unmask.errors import UnmaskError
from unmask.modelfile import (
    default_model_dir,
    migrate_v1,
    parse_saved_model,
    read_saved_model,
    write_saved_model,
)

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"

# --- an audit hook that records every file opened while a test watches ------------------
_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and args and isinstance(args[0], (str, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from doubles.models import tiny_torch_model

    return tiny_torch_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def guarded(monkeypatch):
    """No network (any connect raises) and a record of opened files."""
    global _OPENED

    def no_network(*a, **k):
        raise AssertionError("a model load tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    import timm  # noqa: F401  (imported before watching: its own files are not the model's)
    import torch  # noqa: F401

    _OPENED = []
    yield _OPENED
    _OPENED = None


def _variant(tiny: Path, tmp_path: Path, edit) -> Path:
    d = tmp_path / "variant"
    shutil.copytree(tiny, d)
    meta = json.loads((d / "model.json").read_text())
    edit(meta, d)
    (d / "model.json").write_text(json.dumps(meta))
    return d


def _secret(tmp_path: Path) -> Path:
    s = tmp_path / "elsewhere" / "secret.safetensors"
    s.parent.mkdir(exist_ok=True)
    s.write_bytes(b"not for the model")
    return s


HOSTILE = {
    "hf-hub backbone": lambda m, d: m["detector"]["kwargs"].update(backbone="hf-hub:someone/m"),
    "local-dir backbone": lambda m, d: m["detector"]["kwargs"].update(
        backbone=f"local-dir:{d.parent / 'elsewhere'}"
    ),
    "file backbone": lambda m, d: m["detector"]["kwargs"].update(backbone="file:/etc/passwd"),
    "unknown backbone": lambda m, d: m["detector"]["kwargs"].update(backbone="no_such_net_x"),
    "checkpoint_path": lambda m, d: m["detector"]["kwargs"].update(
        checkpoint_path=str(d.parent / "elsewhere" / "secret.safetensors")
    ),
    "pretrained_cfg_overlay": lambda m, d: m["detector"]["kwargs"].update(
        pretrained_cfg_overlay={"file": "/etc/passwd"}
    ),
    "pretrained": lambda m, d: m["detector"]["kwargs"].update(pretrained=True),
    "huge option": lambda m, d: m["detector"]["kwargs"].update(drop_rate=1e400),
    "input.size 20000": lambda m, d: m["input"].update(size=20000),
    "threshold 2.5": lambda m, d: m.update(threshold=2.5),
    "threshold NaN": lambda m, d: m.update(threshold=math.nan),
    "std zero": lambda m, d: m["input"].update(std=[0, 0, 0]),
    "unknown key": lambda m, d: m.update(surprise=1),
    "missing key": lambda m, d: m.pop("threshold_rule"),
    "classes vs head": lambda m, d: m.update(classes=["real", "fake", "other"]),
    "bad kind": lambda m, d: m.update(kind="pickle"),
    "unknown detector": lambda m, d: m["detector"].update(name="evil"),
    "weights link outside": lambda m, d: (
        (d / "weights.safetensors").unlink(),
        (d / "weights.safetensors").symlink_to(_secret(d.parent)),
    ),
    "tiles with wrong size": lambda m, d: m["input"].update(
        tiles={"size": 64, "count": 4, "region": "face", "align": 8}
    ),
    "format 3": lambda m, d: m.update(format="unmask-model/3"),
    "NaN weights": lambda m, d: _nan_weights(d),
}


def _nan_weights(d: Path) -> None:
    """Every float tensor of the weights NaN (issue 24: such a model called every face real)."""
    import torch
    from safetensors.torch import load_file, save_file

    w = d / "weights.safetensors"
    state = load_file(str(w))
    save_file(
        {k: torch.full_like(v, math.nan) if v.is_floating_point() else v for k, v in state.items()},
        str(w),
    )


def test_huge_integer_in_model_json_is_one_line(tiny, tmp_path):
    d = tmp_path / "huge"
    shutil.copytree(tiny, d)
    text = (d / "model.json").read_text()
    (d / "model.json").write_text(
        text.replace('"threshold": ', '"threshold": ' + "9" * 5001 + ', "x": ', 1)
    )
    from unmask.inference.loader import load_predictor

    with pytest.raises(UnmaskError, match="not valid JSON"):
        load_predictor(d)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_model_json_is_one_line_exit_2(tiny, tmp_path, guarded, capsys, name):
    d = _variant(tiny, tmp_path, HOSTILE[name])
    secret = _secret(tmp_path)
    from unmask.inference.loader import load_predictor

    guarded.clear()  # the set-up wrote files; from here on only the loader opens any
    with pytest.raises(UnmaskError) as exc:
        load_predictor(d)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 400
    assert not [p for p in guarded if Path(p).resolve() == secret.resolve()]
    outside = [p for p in guarded if str(tmp_path) in p and str(d) not in p]
    assert not outside, outside
    # ... and the CLI says it in one line with exit code 2, no traceback
    capsys.readouterr()
    assert main(["detect", str(ASTRONAUT), "--model", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("unmask detect: error:"), err
    assert "Traceback" not in err


def test_classical_hostile_feature_size_and_arrays(tmp_path):
    base = _v1_classical()
    base["input"]["feature_size"] = 60000
    with pytest.raises(UnmaskError, match="features.size"):
        parse_saved_model(base)


def test_tiny_model_loads_and_only_its_own_files_are_read(tiny, guarded):
    import numpy as np

    from unmask.inference.loader import load_predictor

    pred = load_predictor(tiny)
    opened = {Path(p).resolve() for p in guarded if str(tiny.parent) in p}
    assert opened <= {(tiny / "model.json").resolve(), (tiny / "weights.safetensors").resolve()}
    assert (tiny / "model.json").resolve() in opened  # the hook does see the loader's reads
    p = pred.predict_proba([np.zeros((64, 64, 3), np.uint8)])
    assert p.shape == (1, 2) and abs(p.sum() - 1) < 1e-5


def test_shipped_model_is_format_2_and_round_trips(tmp_path):
    """The default is a composite (issue 20): the gan, frozen and blend members, each a full
    model folder, at most 40 MiB of weights in all."""
    m = read_saved_model(default_model_dir())
    assert m.format == "unmask-model/2" and m.kind == "composite"
    assert [x.name for x in m.fusion.members] == ["gan", "frozen", "blend"]
    assert m.threshold_rule.startswith("fpr_cap_val")  # protects every real source
    write_saved_model(tmp_path, m)
    assert read_saved_model(tmp_path) == m
    for x in m.fusion.members:
        member = read_saved_model(default_model_dir() / "members" / x.name)
        assert member.format == "unmask-model/2" and member.kind == "torch"
    weights = sum(p.stat().st_size for p in default_model_dir().rglob("*.safetensors"))
    assert weights <= 40 * 2**20


def _v1_torch() -> dict:
    return {
        "format": "unmask-model/1",
        "unmask_version": "0.1.0",
        "id": "old",
        "kind": "torch",
        "detector": {"name": "timm", "kwargs": {"backbone": "resnet10t"}, "family": "cnn"},
        "classes": ["real", "fake"],
        "preprocess": {
            "margin": 1.3,
            "crop_size": 256,
            "align": False,
            "remove_background": False,
            "faces": "largest",
            "min_score": 0.5,
            "keep_whole": False,
            "max_pixels": 100000000,
        },
        "input": {
            "size": 128,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "landmarks": False,
            "resize": "PIL bilinear",
        },
        "threshold": 0.7,
        "threshold_rule": "youden_j_val",
        "config": {"seed": 0},
        "metrics": {"val": {"auc": 0.9}},
        "training": {"best_epoch": 8},
    }


def _v1_classical() -> dict:
    d = _v1_torch()
    for k in ("training",):
        d.pop(k)
    d.update(
        kind="classical",
        detector="spectrum-logreg",
        detector_kwargs={"C": 1.0},
        class_weight="balanced",
        input={"features": "spectrum", "feature_size": 64, "grayscale": "x", "resize": "y"},
        head={
            "type": "linear",
            "classifier": "LogisticRegression",
            "link": "logistic",
            "classes": [0, 1],
        },  # fmt: skip
        selection={},
        data={},
        notes=[],
        class_profiles={"real": [0.1, 0.2], "fake": [0.3, 0.4]},
        profile_size=64,
        train_seconds=1.0,
    )
    return d


def test_v1_folders_migrate():
    t = parse_saved_model(_v1_torch())
    assert t.kind == "torch" and t.input.size == 128 and t.training["config"] == {"seed": 0}
    c = parse_saved_model(_v1_classical())
    assert c.kind == "classical" and c.features.size == 64 and c.head.type == "linear"
    assert c.detector.kwargs == {"C": 1.0} and c.training["class_weight"] == "balanced"
    # a v1 file with a key the migration does not know fails with how to re-export
    bad = {**_v1_torch(), "extra": 1}
    with pytest.raises(UnmaskError, match="re-train"):
        migrate_v1(bad)
    nan = {**_v1_classical(), "threshold": math.nan}  # the old one-class val NaN
    with pytest.raises(UnmaskError, match="threshold"):
        parse_saved_model(nan)


def test_writer_refuses_nan_and_never_writes_it(tiny, tmp_path):
    m = read_saved_model(tiny)
    import dataclasses

    m2 = dataclasses.replace(m, metrics={"val": {"auc": math.nan}})
    write_saved_model(tmp_path, m2)
    text = (tmp_path / "model.json").read_text()
    assert "NaN" not in text and json.loads(text)["metrics"]["val"]["auc"] is None


# --- property test: random JSON -> a model or one line ------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def _mutations():
    """A valid format-2 model.json with one value somewhere replaced by random JSON."""
    return st.tuples(st.integers(0, 10**6), _json, st.booleans())


def _mutate(data, seed: int, value, drop: bool):
    import random

    r = random.Random(seed)
    node = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return data
        k = r.choice(keys)
        child = node[k]
        if isinstance(child, (dict, list)) and child and r.random() < 0.6:
            node = child
            continue
        if drop and isinstance(node, dict):
            del node[k]
        else:
            node[k] = value
        return data


def _one_line(exc: UnmaskError) -> bool:
    return "\n" not in str(exc) and 0 < len(str(exc)) < 500


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_random_model_json_is_a_model_or_one_line(m):
    base = json.loads((default_model_dir() / "model.json").read_text())
    data = _mutate(base, *m)
    try:
        parse_saved_model(json.loads(json.dumps(data)))
    except UnmaskError as exc:
        assert _one_line(exc)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_random_json_document_is_refused_in_one_line(data):
    try:
        parse_saved_model(data)
    except UnmaskError as exc:
        assert _one_line(exc)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_mutations())
def test_random_model_folder_loads_or_fails_in_one_line_within_memory(tiny, tmp_path_factory, m):
    """The whole loader (schema, registry, build, weights) on mutated folders: a predictor or
    one line, and the process never grows past a bound (input sizes and options are capped)."""
    from unmask.inference.loader import load_predictor

    d = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(tiny, d)
    data = _mutate(json.loads((d / "model.json").read_text()), *m)
    (d / "model.json").write_text(json.dumps(data))
    try:
        load_predictor(d)
    except UnmaskError as exc:
        assert _one_line(exc)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < 6000
