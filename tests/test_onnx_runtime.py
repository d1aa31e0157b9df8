"""ONNX Runtime scores CNN members on the CPU with torch's scores (issue 21): the graph is
exported from the member's own weights at first load, cached by their hash, refused and
rebuilt when the cache was tampered with, and `--runtime` picks it on the command line."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from test_composite_consistency import ASTRONAUT, _cli, tiny_composite  # noqa: F401
from unmask.data.tiles import TileSpec
from unmask.errors import UnmaskError

pytest.importorskip("onnxruntime")

TOL = 1e-4  # max |P(class) difference| allowed between the runtimes


@pytest.fixture(scope="module", autouse=True)
def module_cache(tmp_path_factory):
    """Every graph this module exports lands in its own cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("unmask-cache")
        mp.setenv("UNMASK_CACHE", str(cache))
        mp.delenv("UNMASK_RUNTIME", raising=False)
        yield cache


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty cache for one test."""
    monkeypatch.setenv("UNMASK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _faces(pred, n: int = 6, seed: int = 0):
    from unmask.data.extract import Face

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        crop = rng.integers(0, 256, (pred.spec.crop_size,) * 2 + (3,), dtype=np.uint8)
        tiles = {}
        for spec in pred.needs.tiles:
            tiles[spec] = rng.integers(0, 256, (spec.count, spec.size, spec.size, 3), np.uint8)
        out.append(Face(crop, None, tiles))
    return out


def _with_batchnorm_stats(d: Path, seed: int = 0) -> Path:
    """Non-trivial running statistics, so that folding and export have work to do."""
    import torch
    from safetensors.torch import load_file, save_file

    w = d / "weights.safetensors"
    state = load_file(str(w))
    gen = torch.Generator().manual_seed(seed)
    for k, v in state.items():
        if k.endswith("running_mean"):
            state[k] = torch.randn(v.shape, generator=gen) * 0.3
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=gen) + 0.5
    save_file(state, str(w))
    return d


def _both(d: Path):
    from unmask.inference.loader import load_predictor

    warned: list[str] = []
    onnx = load_predictor(d, runtime="onnx", warn=warned.append)
    torch_ = load_predictor(d, runtime="torch", warn=warned.append)
    assert warned == []
    return onnx, torch_


@pytest.mark.parametrize("tiles", [None, TileSpec(32, 4)], ids=["crop", "tiles"])
def test_tiny_models_score_the_same_on_both_runtimes(tmp_path, cache, tiles):
    from doubles.models import tiny_torch_model

    d = _with_batchnorm_stats(tiny_torch_model(tmp_path / "m", tiles=tiles))
    onnx, torch_ = _both(d)
    assert (onnx.runtime, torch_.runtime) == ("onnx", "torch")
    faces = _faces(onnx, n=40)  # more than a batch of 32: the batch axis is dynamic
    a, b = onnx.predict(faces).proba, torch_.predict(faces).proba
    assert a.shape == b.shape == (40, 2)
    assert np.abs(a - b).max() <= TOL
    # tiny random nets barely move P(fake); the runtimes agree far more closely than it moves
    assert np.abs(a - b).max() <= np.ptp(b[:, 1]) / 100
    # embeddings come from torch's folded copy whatever scores
    np.testing.assert_allclose(onnx.embed_faces(faces[:3]), torch_.embed_faces(faces[:3]))


def test_lite0_shaped_member_scores_the_same(tmp_path, cache):
    """The shipped blend member's architecture (EfficientNet-Lite0, 224 px, renormalize),
    random weights written through the project's writer."""
    import torch
    from safetensors.torch import save_file

    from doubles.models import TINY_SPEC
    from unmask.data.normalize import IMAGENET_MEAN, IMAGENET_STD
    from unmask.detectors.cnn import build_cnn
    from unmask.modelfile import WEIGHTS_FILE, new_saved_model, write_saved_model

    torch.manual_seed(0)
    kwargs = {"backbone": "tf_efficientnet_lite0", "renormalize": True}
    model = build_cnn("timm", 2, False, **kwargs)
    d = tmp_path / "lite0"
    d.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, d / WEIGHTS_FILE)
    saved = new_saved_model(
        id="lite0",
        kind="torch",
        detector={"name": "timm", "family": "cnn", "kwargs": kwargs},
        classes=["real", "fake"],
        preprocess=TINY_SPEC,
        input={
            "size": 224,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "landmarks": False,
            "tiles": None,
            "resize": "PIL bilinear",
        },
        threshold=0.5,
        threshold_rule="fixed (test model)",
    )
    write_saved_model(d, saved)
    _with_batchnorm_stats(d, seed=1)
    onnx, torch_ = _both(d)
    assert onnx.runtime == "onnx"
    faces = _faces(onnx, n=4)
    assert np.abs(onnx.predict(faces).proba - torch_.predict(faces).proba).max() <= TOL


def test_second_load_hits_the_cache_and_a_tampered_graph_is_rebuilt(tmp_path, cache):
    from doubles.models import tiny_torch_model
    from unmask.inference.loader import load_predictor

    d = tiny_torch_model(tmp_path / "m")
    first = load_predictor(d)  # auto: ONNX Runtime on the CPU
    assert first.runtime == "onnx" and not first._onnx.cached
    (record,) = cache.glob("*.json")
    (graph,) = cache.glob("*.onnx")
    good = graph.read_bytes()
    assert json.loads(record.read_text())["graph_sha256"] == graph.stem
    assert load_predictor(d)._onnx.cached

    graph.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    warned: list[str] = []
    pred = load_predictor(d, warn=warned.append)
    assert len(warned) == 1 and "refused" in warned[0] and "sha256" in warned[0]
    assert "\n" not in warned[0]
    assert pred.runtime == "onnx" and not pred._onnx.cached
    assert graph.read_bytes() == good  # rebuilt and rewritten (the export is deterministic)
    faces = _faces(pred)
    torch_ = load_predictor(d, runtime="torch")
    assert np.abs(pred.predict(faces).proba - torch_.predict(faces).proba).max() <= TOL


def _relabel(record: Path, graph: Path, data: bytes) -> None:
    """Replace the cached graph AND its record consistently: the hash check passes, so
    only the content checks can refuse it."""
    digest = hashlib.sha256(data).hexdigest()
    new = graph.with_name(f"{digest}.onnx")
    graph.unlink()
    new.write_bytes(data)
    meta = json.loads(record.read_text())
    record.write_text(json.dumps({**meta, "graph_sha256": digest, "bytes": len(data)}))


def test_a_consistent_but_foreign_cached_graph_is_refused(tmp_path, cache, monkeypatch):
    from doubles.models import tiny_torch_model
    from unmask.inference import onnx_runtime
    from unmask.inference.loader import load_predictor

    d = tiny_torch_model(tmp_path / "m")
    load_predictor(d)
    (record,) = cache.glob("*.json")
    (graph,) = cache.glob("*.onnx")
    good = graph.read_bytes()
    # an extra operator set in a custom domain, appended (protobuf fields merge)
    _relabel(record, graph, good + _field(8, _field(1, b"evil.ops") + _varint_field(2, 1)))
    warned: list[str] = []
    assert load_predictor(d, warn=warned.append).runtime == "onnx"
    assert len(warned) == 1 and "evil.ops" in warned[0], warned
    # too big for its weights: refused before it is read
    (record,) = cache.glob("*.json")
    graph = cache / f"{json.loads(record.read_text())['graph_sha256']}.onnx"
    assert graph.read_bytes() == good  # the rebuilt graph (the refused one is left aside)
    monkeypatch.setattr(onnx_runtime, "SIZE_SLACK", 0)
    limit = onnx_runtime.size_limit((d / "weights.safetensors").stat().st_size)
    _relabel(record, graph, good + _field(14, b"x" * limit))  # metadata_props, padded
    warned.clear()
    assert load_predictor(d, warn=warned.append).runtime == "onnx"
    assert len(warned) == 1 and "limit" in warned[0], warned


def test_unusable_graphs_fall_back_to_torch_with_a_warning(tmp_path, cache, monkeypatch):
    from doubles.models import tiny_torch_model
    from unmask.inference import onnx_runtime
    from unmask.inference.loader import load_predictor

    d = tiny_torch_model(tmp_path / "m")

    def broken(model, example):
        raise RuntimeError("exporter exploded\nsecond line")

    monkeypatch.setattr(onnx_runtime, "export_graph", broken)
    warned: list[str] = []
    pred = load_predictor(d, runtime="onnx", warn=warned.append)
    assert pred.runtime == "torch"
    assert warned == [f"{d}: scoring with torch, not ONNX Runtime (exporter exploded)"]
    assert pred.predict(_faces(pred)).proba.shape == (6, 2)


def test_a_cache_folder_that_takes_no_files_keeps_the_graph_in_memory(tmp_path, monkeypatch):
    from doubles.models import tiny_torch_model
    from unmask.inference.loader import load_predictor

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("UNMASK_CACHE", str(blocker))  # mkdir under a file fails, even as root
    warned: list[str] = []
    pred = load_predictor(tiny_torch_model(tmp_path / "m"), warn=warned.append)
    assert pred.runtime == "onnx" and warned == []


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _model(*, opset_domain: bytes = b"", node_domain: bytes = b"", extra: bytes = b"") -> bytes:
    tensor = _field(8, b"w") + extra  # TensorProto: name = 8
    node = _field(4, b"Relu") + (_field(7, node_domain) if node_domain else b"")
    graph = _field(1, node) + _field(5, tensor)
    opset = (_field(1, opset_domain) if opset_domain else b"") + _varint_field(2, 17)
    return _varint_field(1, 8) + _field(8, opset) + _field(7, graph)


@pytest.mark.parametrize(
    "graph,reason",
    [
        (_model(opset_domain=b"com.evil"), "operator set 'com.evil'"),
        (_model(node_domain=b"com.microsoft"), "operator domain 'com.microsoft'"),
        (_model(extra=_field(13, _field(1, b"location") + _field(2, b"/etc/x"))), "external"),
        (_model(extra=_varint_field(14, 1)), "external"),
        (_model() + _field(25, b""), "functions"),
        (_varint_field(1, 8), "no graph"),
        (b"\xff\xff\xff", "truncated"),
    ],
)
def test_check_graph_refuses_anything_but_standard_onnx(graph, reason):
    from unmask.inference.onnx_runtime import check_graph

    check_graph(_model())  # the hand-made baseline passes
    check_graph(_model(opset_domain=b"ai.onnx"))
    with pytest.raises(UnmaskError, match="not plain ONNX") as err:
        check_graph(graph)
    assert reason in str(err.value)


def test_runtime_choice(monkeypatch):
    from unmask.inference import onnx_runtime
    from unmask.inference.onnx_runtime import resolve_runtime

    monkeypatch.delenv("UNMASK_RUNTIME", raising=False)
    assert resolve_runtime(None, "cpu") == "onnx"
    assert resolve_runtime("auto", "cuda:0") == "torch"  # GPUs run torch
    assert resolve_runtime("torch", "cpu") == "torch"
    monkeypatch.setenv("UNMASK_RUNTIME", "torch")
    assert resolve_runtime(None, "cpu") == "torch"
    assert resolve_runtime("onnx", "cpu") == "onnx"  # the flag wins over the variable
    monkeypatch.setenv("UNMASK_RUNTIME", "tensorrt")
    with pytest.raises(UnmaskError, match="UNMASK_RUNTIME 'tensorrt': expected one of"):
        resolve_runtime(None, "cpu")
    with pytest.raises(UnmaskError, match="scores on the CPU"):
        resolve_runtime("onnx", "cuda")
    monkeypatch.setattr(onnx_runtime, "onnxruntime_installed", lambda: False)
    assert resolve_runtime("auto", "cpu") == "torch"
    with pytest.raises(UnmaskError, match="pip install onnxruntime"):
        resolve_runtime("onnx", "cpu")


def test_cli_runtime_flag_detect_eval_and_serve_agree(tiny_composite, tmp_path, monkeypatch):  # noqa: F811
    """detect --json, eval and the server, each on ONNX Runtime and on torch: the same
    P(fake) and driver for the astronaut and the val rows."""
    from fastapi.testclient import TestClient

    from unmask.inference.loader import load_predictor
    from unmask.inference.onnx_runtime import describe_runtime
    from unmask.serving.app import create_app

    manifest = tiny_composite.parent / "val" / "manifest.csv"
    got = {}
    for runtime in ("onnx", "torch"):
        out = _cli(
            ["detect", str(ASTRONAUT), "-m", str(tiny_composite), "--json"] + ["--runtime", runtime]
        )
        (face,) = json.loads(out)["results"][0]["faces"]
        ev = tmp_path / f"eval-{runtime}"
        args = ["eval", str(manifest), "-m", str(tiny_composite), "--split", "val", "-o", str(ev)]
        _cli([*args, "--bootstrap", "0", "--quiet", "--runtime", runtime])
        scores = np.loadtxt(ev / "scores.csv", delimiter=",", skiprows=1, usecols=_p_fake_col(ev))
        pred = load_predictor(tiny_composite, runtime=runtime)
        assert describe_runtime(pred) == f"artifact={runtime} blend={runtime}"
        with TestClient(create_app(pred, model_dir=tiny_composite)) as client:
            resp = client.post(
                "/v1/detect", files={"file": ("a.jpg", ASTRONAUT.read_bytes(), "image/jpeg")}
            )
        (served,) = resp.json()["result"]["faces"]
        assert served["driver"] == face["driver"]
        assert abs(served["p_fake"] - face["p_fake"]) <= TOL
        got[runtime] = (face, scores)
    (fo, so), (ft, st) = got["onnx"], got["torch"]
    assert fo["driver"] == ft["driver"] and abs(fo["p_fake"] - ft["p_fake"]) <= TOL
    assert np.abs(so - st).max() <= TOL and np.ptp(st) > 100 * TOL


def _p_fake_col(ev: Path) -> int:
    header = (ev / "scores.csv").read_text().splitlines()[0].split(",")
    return header.index("p_fake")


def test_cli_runtime_errors_are_one_line(monkeypatch, capsys):
    from unmask.cli import main

    monkeypatch.setenv("UNMASK_RUNTIME", "fast")
    assert main(["detect", str(ASTRONAUT)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "UNMASK_RUNTIME 'fast'" in err
    monkeypatch.delenv("UNMASK_RUNTIME")
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "x", "--runtime", "fast"])  # argparse: not a choice
    assert exit_.value.code == 2


def test_help_stays_light():
    """The flag's help must not import onnxruntime or torch."""
    import subprocess
    import sys

    code = (
        "import sys; from unmask.cli import main\n"
        "try: main(['detect', '--help'])\nexcept SystemExit: pass\n"
        "assert 'onnxruntime' not in sys.modules and 'torch' not in sys.modules"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "--runtime {auto,onnx,torch}" in res.stdout


def test_detect_says_when_a_member_falls_back_to_torch(tmp_path, cache, monkeypatch, capsys):
    """The model loads in a thread with stderr silenced (MediaPipe's C++ chatter); the
    fall-back warning is said after it, once."""
    from doubles.models import tiny_torch_model
    from unmask.inference import onnx_runtime

    def broken(model, example):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(onnx_runtime, "export_graph", broken)
    d = tiny_torch_model(tmp_path / "m")
    out = _cli(["detect", str(ASTRONAUT), "-m", str(d), "--json", "--runtime", "onnx"])
    assert json.loads(out)["results"][0]["faces"]
    err = capsys.readouterr().err
    assert err.count("unmask: warning: ") == 1
    assert "scoring with torch, not ONNX Runtime (no exporter here)" in err


def test_sessions_share_one_cpu_arena():
    """Members score one after another, so their sessions share one memory arena in ONNX
    Runtime's environment instead of holding one each (three Lite0s: 2.25 -> 1.24 GB)."""
    import torch

    from unmask.inference.onnx_runtime import export_graph, make_session, shared_cpu_arena

    assert shared_cpu_arena() and shared_cpu_arena()  # registered once, then reused
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).eval()
    graph = export_graph(net, torch.randn(2, 3, 8, 8))
    sessions = [make_session(graph, threads=1) for _ in range(2)]
    for s in sessions:
        opts = s.get_session_options()
        assert opts.get_session_config_entry("session.use_env_allocators") == "1"
    x = np.random.default_rng(0).normal(size=(3, 3, 8, 8)).astype(np.float32)
    a, b = (s.run(None, {s.get_inputs()[0].name: x})[0] for s in sessions)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, net(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_scoring_from_a_warm_cache_never_imports_torch(tmp_path):
    """Importing torch is most of a one-photo start-up: once a model's graphs are cached,
    loading and scoring it (detect's path) must not import it."""
    import subprocess
    import sys

    from doubles.models import tiny_torch_model

    model = tiny_torch_model(tmp_path / "m")
    env = {**os.environ, "UNMASK_CACHE": str(tmp_path / "cache"), "UNMASK_RUNTIME": "auto"}
    code = (
        "import sys, numpy as np\n"
        "from unmask.data.extract import Face\n"
        "from unmask.inference.loader import load_predictor\n"
        f"p = load_predictor({str(model)!r})\n"
        "crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)\n"
        "print(type(p).__name__, float(p.predict([Face(crop)]).proba[0, 1]),"
        " 'torch' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    (first, p1, _), (second, p2, torch_loaded) = runs
    assert (first, second) == ("TorchPredictor", "OnnxPredictor")  # exported, then cached
    assert p1 == p2 and torch_loaded == "False"
