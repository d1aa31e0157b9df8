"""The Ray engine gives the local engine's answers: same manifest, crops and splits
(prepare), same scores (detect, eval), every input accounted for, no row lost or duplicated
when a worker dies, and re-runs skip finished work. One local Ray instance for the module."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray", reason="Ray is not installed (pip install 'unmask[cluster]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ray[data]')")

from unmask.cli import main  # noqa: E402
from unmask.data.manifest import read_manifest  # noqa: E402
from unmask.data.tables import read_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    from unmask.cluster.session import ray_session

    with ray_session(num_cpus=3) as ray:
        yield ray


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """<root>/<label>/: faces (one, two, mirrored, small), a face video, and bad files."""
    import cv2

    root = tmp_path_factory.mktemp("mixed") / "tiny"
    real, gan = root / "real", root / "gan"
    real.mkdir(parents=True)
    gan.mkdir()
    face = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    Image.fromarray(face).save(real / "one.jpg", quality=95)
    Image.fromarray(face[:, ::-1]).save(real / "mirror.png")
    Image.fromarray(face).resize((200, 200)).save(gan / "small.jpg", quality=90)
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(gan / "two.png")
    ramp = np.linspace(0, 255, 128, dtype=np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (128, 1))] * 3, axis=2)).save(real / "noface.png")
    (real / "corrupt.jpg").write_bytes((real / "one.jpg").read_bytes()[:300])
    (real / "notes.txt").write_text("not an image")
    (gan / "empty.jpg").write_bytes(b"")
    w = cv2.VideoWriter(str(real / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    small = cv2.resize(face[:, :, ::-1], (256, 256))
    for i in range(10):
        w.write(np.roll(small, 2 * i, axis=1))
    w.release()
    return root


def _same_rows(a, b) -> None:
    """Same columns, same cells in the same order (the resolved abs_* paths aside)."""
    cols = [c for c in a.columns if c not in ("abs_path", "abs_landmarks")]
    assert cols == [c for c in b.columns if c not in ("abs_path", "abs_landmarks")]
    assert len(a) == len(b)
    for c in cols:
        assert list(a[c].astype(str)) == list(b[c].astype(str)), c


def _crops(folder: Path, df) -> dict[str, bytes]:
    return {p: np.asarray(Image.open(folder / p)).tobytes() for p in df["path"]}


def _prepare(src: Path, out: Path, *extra: str) -> None:
    args = ["prepare", str(src), "-o", str(out), "--all-faces", "--frames", "3"]
    assert main([*args, "--no-progress", "--splits", "0.5,0.25,0.25", *extra]) == 0


@pytest.fixture(scope="module")
def prepared(mixed, tmp_path_factory, ray_local) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("prepared")
    _prepare(mixed, base / "local", "--workers", "1")
    _prepare(mixed, base / "ray", "--engine", "ray", "--format", "parquet", "--workers", "2")
    return {"local": base / "local", "ray": base / "ray"}


def test_prepare_same_manifest_crops_and_accounting(prepared, capsys):
    local, ray_out = prepared["local"], prepared["ray"]
    assert (ray_out / "manifest.parquet").is_file() and not (ray_out / "manifest.csv").exists()
    a, b = read_manifest(local), read_manifest(ray_out)
    _same_rows(a, b)  # rows, order, splits, boxes
    assert list(a.dtypes) == list(b.dtypes)  # Parquet reads back with the CSV's types
    assert len(a) >= 6 and a["path"].is_unique
    assert _crops(local, a) == _crops(ray_out, b)  # bit-identical crops
    rej_a = read_table(local / "rejected.csv")
    rej_b = read_table(ray_out / "rejected.parquet")
    _same_rows(rej_a, rej_b)
    reasons = dict(zip(rej_a["file"].map(lambda f: Path(f).name), rej_a["reason"], strict=False))
    assert {"corrupt.jpg", "notes.txt", "empty.jpg", "noface.png"} <= set(reasons)
    meta = json.loads((ray_out / "prepare.json").read_text())["counts"]
    assert meta["inputs"] == 9 == meta["accepted"] + meta["rejected"]


def test_prepare_rerun_skips_finished_work(prepared, mixed, capsys):
    before = read_manifest(prepared["ray"])
    capsys.readouterr()
    _prepare(mixed, prepared["ray"], "--engine", "ray", "--format", "parquet")
    assert "(9 inputs reused" in capsys.readouterr().out
    assert read_manifest(prepared["ray"]).equals(before)


def test_detect_same_scores_and_parquet_table(mixed, tmp_path, capsys, ray_local):
    common = ["detect", "--json", "-q", "--batch-size", "2", "--frames", "3", str(mixed)]
    assert main([*common, "--workers", "1", "--csv", str(tmp_path / "l.csv")]) == 0
    local = json.loads(capsys.readouterr().out)
    table = str(tmp_path / "r.parquet")
    code = main([*common, "--engine", "ray", "--table", table, "--format", "parquet"])
    assert code == 0
    ray_doc = json.loads(capsys.readouterr().out)
    assert ray_doc["results"] == local["results"]  # same files, order, boxes, scores
    assert ray_doc["summary"] == local["summary"] and local["summary"]["files"] == 9
    status = {Path(r["file"]).name: r["status"] for r in local["results"]}
    assert status["corrupt.jpg"] == status["notes.txt"] == "error"
    assert sum(len(r["faces"]) for r in local["results"]) >= 6
    from_csv, from_parquet = read_table(tmp_path / "l.csv"), read_table(table)
    assert (
        len(from_csv) == len(from_parquet) == sum(max(len(r["faces"]), 1) for r in local["results"])
    )
    assert from_csv[from_parquet.columns].equals(from_parquet)
    # the same rows, written as Parquet shards by the workers (shards in any order)
    shards = tmp_path / "shards"
    args = ["detect", "-q", "--batch-size", "2", "--frames", "3", str(mixed), "--engine", "ray"]
    assert main([*args, "--shards", str(shards)]) == 0
    assert "9 file(s): 6 scored" in capsys.readouterr().out
    key = ["file", "frame", "face_index"]
    from_shards = read_table(shards).sort_values(key, kind="stable").reset_index(drop=True)
    expect = from_parquet.sort_values(key, kind="stable").reset_index(drop=True)
    assert from_shards.equals(expect)


def test_eval_same_scores(prepared, tmp_path, capsys, ray_local):
    from unmask.inference.saved_model import default_model_dir

    common = ["eval", "-m", str(default_model_dir()), "--split", "all", "--quiet"]
    common += ["--bootstrap", "0", "--batch-size", "2"]
    noise = ["--perturb", "noise:0.05"]  # seeded per row: the blocks must keep the seeds
    assert main([*common, str(prepared["local"]), "-o", str(tmp_path / "l"), *noise]) == 0
    ray_args = [*common, str(prepared["ray"]), "-o", str(tmp_path / "r"), "--engine", "ray"]
    ray_args += noise
    assert main(ray_args) == 0
    capsys.readouterr()
    a = read_table(tmp_path / "l" / "scores.csv")
    b = read_table(tmp_path / "r" / "scores.csv")
    assert len(a) == 2 * len(read_manifest(prepared["local"]))  # clean + noise
    assert sorted(set(a["perturbation"])) == ["noise:0.05", "none"]
    a = a.drop(columns=[c for c in a.columns if "path" in c])
    b = b.drop(columns=[c for c in b.columns if "path" in c])
    # Same rows, labels and drivers; scores equal up to float summation order: a Ray actor
    # runs torch on one thread, this process on two, and oneDNN's channels-last kernels
    # split the sums by thread (differences ~1e-7 in P(fake)).
    probs = [c for c in a.columns if c.startswith("p_")]
    assert a.drop(columns=probs).equals(b.drop(columns=probs))
    np.testing.assert_allclose(a[probs].to_numpy(float), b[probs].to_numpy(float), atol=1e-5)


def _actor_pids(name: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if name.encode() in cmd:
                pids.append(int(d.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes in /proc")
def test_killed_worker_loses_and_duplicates_nothing(prepared, mixed, tmp_path, ray_local):
    from unmask.cluster.prepare import run_tasks_on_ray
    from unmask.data.prepare import prepare
    from unmask.data.spec import PreprocessSpec

    out = tmp_path / "killed"
    spec = PreprocessSpec(faces="all")
    done: dict[str, object] = {}

    def job():
        done["result"] = prepare(
            mixed,
            out,
            spec,
            splits=(0.5, 0.25, 0.25),
            frames=3,
            workers=2,
            progress=False,
            executor=run_tasks_on_ray,
        )

    t = threading.Thread(target=job)
    t.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and t.is_alive() and time.monotonic() < deadline:
        # kill a crop worker once it has written its first record: mid-run, for certain
        if any((out / ".work").glob("*.json")):
            pids = _actor_pids("_PrepareActor")
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
                still_running = t.is_alive()
        time.sleep(0.05)
    t.join(timeout=300)
    assert killed is not None and still_running, "no worker was killed mid-run"
    res = done["result"]
    assert res.n_inputs == 9 == res.n_accepted + res.n_rejected
    a, b = read_manifest(prepared["local"]), read_manifest(out)
    assert a["path"].is_unique and b["path"].is_unique
    _same_rows(a, b)


def test_address_needs_the_ray_engine(mixed, tmp_path, capsys):
    code = main(["prepare", str(mixed), "-o", str(tmp_path / "o"), "--address", "auto"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--engine ray" in err[0]


def test_detect_runtimes_agree_on_ray(mixed, capsys, ray_local):
    """`--runtime` reaches the model actors: each runtime on Ray gives the local engine's
    scores for it, and ONNX Runtime's agree with torch's within 1e-4 (issue 21)."""
    pytest.importorskip("onnxruntime")
    common = ["detect", "--json", "-q", "--batch-size", "2", "--frames", "3", str(mixed)]
    scores = {}
    for runtime in ("onnx", "torch"):
        for engine in ("local", "ray"):
            assert main([*common, "--runtime", runtime, "--engine", engine]) == 0
            doc = json.loads(capsys.readouterr().out)
            scores[runtime, engine] = np.array(
                [f["p_fake"] for r in doc["results"] for f in r["faces"]]
            )
    assert len(scores["onnx", "local"]) >= 6
    for runtime in ("onnx", "torch"):
        np.testing.assert_allclose(scores[runtime, "ray"], scores[runtime, "local"], atol=1e-5)
    np.testing.assert_allclose(scores["onnx", "ray"], scores["torch", "ray"], atol=1e-4)
