"""Fatal problems are one line and exit 2, checked before the work; eval never counts a row
it should not (unknown labels, duplicates) and writes nothing into the data set; rows printed
while a progress bar is live never cut into it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from test_classical import _cfg, make_manifest
from unmask.cli import build_parser, main


def _one_line_error(capsys, code: int) -> str:
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def classical(tmp_path_factory) -> tuple[Path, Path]:
    from unmask.training.classical import train_classical

    root = tmp_path_factory.mktemp("hard")
    man = make_manifest(root / "data", {"train": 10, "val": 6, "test": 6}, sources=("a",))
    model = train_classical(_cfg(man, "spectrum-logreg", root / "model"), progress=False)
    return man, model


def test_eval_skips_unknown_labels_and_duplicates_and_leaves_the_data_alone(
    classical, tmp_path, capsys
):
    man, model = classical
    data = tmp_path / "data"
    import shutil

    shutil.copytree(man.parent, data)
    df = pd.read_csv(data / "manifest.csv", keep_default_na=False)
    test = df[df["split"] == "test"]
    banana = test.iloc[:1].assign(label="banana", path="crops/banana.png")
    Image.open(data / test.iloc[0]["path"]).save(data / "crops" / "banana.png")
    pd.concat([df, banana, test.iloc[:3]]).to_csv(data / "manifest.csv", index=False)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    out = tmp_path / "report"
    argv = ["eval", "--model", str(model), str(data), "-o", str(out), "--bootstrap", "0"]
    assert main([*argv, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 row(s) with unknown label 'banana'" in err
    assert "3 duplicated row(s)" in err
    report = json.loads((out / "report.json").read_text())
    assert report["perturbations"]["none"]["pooled"]["n"] == len(test)  # each crop once
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # no .cache inside


def test_eval_and_index_missing_crop_is_one_line(classical, tmp_path, capsys):
    man, model = classical
    data = tmp_path / "data"
    import shutil

    shutil.copytree(man.parent, data)
    df = pd.read_csv(data / "manifest.csv", keep_default_na=False)
    (data / df[df["split"] == "test"].iloc[0]["path"]).unlink()
    code = main(["eval", "--model", str(model), str(data), "-o", str(tmp_path / "r"), "--quiet"])
    assert "crop file(s) listed but missing" in _one_line_error(capsys, code)
    code = main(["index", "--model", str(model), str(data), "-o", str(tmp_path / "i")])
    assert "missing" in _one_line_error(capsys, code)


def test_eval_explain_index_serve_default_to_the_shipped_model():
    parser = build_parser()
    for argv in (
        ["eval", "data"],
        ["explain", "x.jpg", "-o", "out"],
        ["index", "data", "-o", "out"],
        ["serve"],
    ):
        assert parser.parse_args(argv).model is None  # -> default_model_dir()


@pytest.mark.parametrize(
    "argv, says",
    [
        (["detect", "{img}", "--batch-size", "-5"], "--batch-size"),
        (["detect", "{img}", "--workers", "0"], "--workers"),
        (["detect", "{img}", "--csv", "{tmp}/no/such/folder/out.csv"], "does not exist"),
        (["detect", "{img}", "--csv", "{tmp}"], "is a folder"),
        (["detect", "{img}", "--annotate", "{img}"], "not a folder"),
        (["detect", "{img}", "--explain", "/proc/unmask-nope"], "not writable"),
        (["detect", "{img}", "--device", "cuda"], "--device"),
        (["eval", "{tmp}", "--batch-size", "-5"], "--batch-size"),
        (["explain", "{img}", "-o", "{img}"], "not a folder"),
        (["index", "{tmp}", "-o", "{img}"], "not a folder"),
        (["prepare", "{img}", "-o", "{img}"], "not a folder"),
        (["prepare", "{img}", "-o", "/proc/unmask-nope"], "not writable"),
    ],
)
def test_fatal_problems_are_one_line_before_any_work(argv, says, tmp_path, capsys):
    import torch

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    img = tmp_path / "a.png"
    Image.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(img)
    argv = [a.format(img=img, tmp=tmp_path) for a in argv]
    assert says in _one_line_error(capsys, main(argv))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_one_line(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(img)
    err = _one_line_error(capsys, main(["detect", str(img), "-q", "--csv", "/dev/full"]))
    assert "No space left on device" in err


def test_table_rows_never_cut_into_the_progress_bar(tmp_path):
    """On a terminal stdout and stderr share a screen: what each line shows (the text after
    its last carriage return) is a table row or a bar, never both."""
    for i in range(3):
        Image.fromarray(np.full((24, 24, 3), 60 + i, np.uint8)).save(tmp_path / f"img{i}.png")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with contextlib.redirect_stdout(screen), contextlib.redirect_stderr(screen):
        assert main(["detect", str(tmp_path), "--workers", "1"]) == 0
    assert "file/s" in screen.getvalue()  # the bar was drawn
    shown = [line.rsplit("\r", 1)[-1] for line in screen.getvalue().split("\n")]
    rows = [s for s in shown if re.search(r"img\d\.png", s)]
    assert len(rows) == 3
    assert not [s for s in rows if "%|" in s or "file/s" in s], rows
    # stderr to a file or a pipe: no bar at all, only the rows and the summary
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        assert main(["detect", str(tmp_path), "--workers", "1"]) == 0
    assert "\r" not in log.getvalue() and "file/s" not in log.getvalue()


def test_feature_cache_on_a_read_only_data_set_falls_back(tmp_path, monkeypatch):
    """Classical train/eval/spectrum cache features beside the manifest by default; when
    that folder takes no files (read-only data set) the run goes on with the user's cache."""
    from unmask.features.extract import extract_files

    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)).save(img)
    blocked = tmp_path / "a_file"
    blocked.write_text("x")  # a folder cannot be made under a file: like a read-only folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    feats = extract_files([img], "spectrum", 32, cache_dir=blocked / ".cache", progress=False)
    assert feats.shape[0] == 1 and np.isfinite(feats).all()
    assert list((tmp_path / "xdg" / "unmask" / "features").glob("*.npy"))


# --- training values that used to hang or end in a traceback (issue 24) -----------------
@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory) -> Path:
    from test_training_engine import make_tiny_manifest

    return make_tiny_manifest(tmp_path_factory.mktemp("trainvals"), n_per_class=4, size=32)


@pytest.mark.parametrize(
    ("sets", "says"),
    [
        (["trainer.devices=99", "trainer.accelerator=cpu"], "CPU core"),
        (["trainer.precision=evil"], "trainer.precision must be one of"),
        (["trainer.resume=/etc/passwd"], "is not a checkpoint"),
        (["detector.name=resnet18", "detector.kwargs.backbone=resnet34"], "detector 'resnet18'"),
    ],
)
def test_bad_training_values_are_one_line(tiny_manifest, tmp_path, capsys, sets, says):
    import torch

    if "trainer.accelerator=cuda" in sets and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = ["train", "configs/resnet18.yaml", "-o", str(tmp_path / "m")]
    argv += ["--set", f"data.manifest={tiny_manifest}", "--set", "data.input_size=32"]
    for s in sets:
        argv += ["--set", s]
    capsys.readouterr()
    err = _one_line_error(capsys, main(argv))
    assert says in err, err
    assert not (tmp_path / "m" / "model.json").exists()


def test_cuda_without_a_gpu_is_one_line(tiny_manifest, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = ["train", "configs/resnet18.yaml", "-o", str(tmp_path / "m")]
    argv += ["--set", f"data.manifest={tiny_manifest}", "--set", "trainer.accelerator=cuda"]
    assert "no CUDA GPU" in _one_line_error(capsys, main(argv))


def test_classical_calibration_on_a_small_val_split(tmp_path):
    """A classical config on a manifest with 3 val rows per class trains (cv folds fit the
    rarest class) instead of sklearn's n_splits traceback."""
    from unmask.training.classical import train_classical

    man = make_manifest(tmp_path / "data", {"train": 8, "val": 3, "test": 2}, sources=("a",))
    model = train_classical(_cfg(man, "spectrum-logreg", tmp_path / "model"), progress=False)
    assert (model / "model.json").is_file()


# --- eval, index and explain on missing, empty and broken inputs (issue 24) ---------------
@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--model", "{model}", "{tmp}/nope", "-o", "{tmp}/out"],
        ["index", "--model", "{model}", "{tmp}/nope", "-o", "{tmp}/out"],
        ["explain", "--model", "{model}", "{tmp}/nope", "-o", "{tmp}/out"],
        ["explain", "--model", "{model}", "{tmp}/empty", "-o", "{tmp}/out"],
    ],
)
def test_missing_or_empty_input_makes_no_output_folder(classical, tmp_path, capsys, argv):
    _, model = classical
    (tmp_path / "empty").mkdir()
    argv = [a.format(model=model, tmp=tmp_path) for a in argv]
    capsys.readouterr()
    _one_line_error(capsys, main(argv))
    assert not (tmp_path / "out").exists()


def test_eval_skips_an_unreadable_crop_and_says_so(classical, tmp_path, capsys):
    man, model = classical
    import shutil

    data = tmp_path / "data"
    shutil.copytree(man.parent, data)
    df = pd.read_csv(data / "manifest.csv", keep_default_na=False)
    bad = df[df["split"] == "test"].iloc[0]["path"]
    (data / bad).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a broken crop
    argv = ["eval", "--model", str(model), str(data), "-o", str(tmp_path / "r"), "--quiet"]
    assert main([*argv, "--bootstrap", "0"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 row(s) whose crop is not a readable image" in err, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["perturbations"]["none"]["pooled"]["n"] == int((df["split"] == "test").sum()) - 1


def test_serve_on_a_busy_port_is_one_line(capsys):
    """It printed uvicorn's log lines (issue 24)."""
    import socket

    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        capsys.readouterr()
        err = _one_line_error(capsys, main(["serve", "--port", str(port)]))
    assert f"cannot listen on 127.0.0.1:{port}" in err, err


def test_fifo_named_weights_is_not_a_regular_file(tmp_path):
    from doubles.models import tiny_torch_model
    from unmask.errors import UnmaskError
    from unmask.inference.loader import load_predictor

    model = tiny_torch_model(tmp_path / "m")
    (model / "weights.safetensors").unlink()
    os.mkfifo(model / "weights.safetensors")
    with pytest.raises(UnmaskError, match="not a regular file"):
        load_predictor(model)
