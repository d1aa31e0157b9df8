"""Classical detectors on tiny synthetic data: smooth noise (real) vs the same with a
periodic checkerboard, the trace of a transposed-convolution upsampler (fake)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unmask.detectors import create_detector, list_detectors

CLASSICAL = ("dct-logreg", "dct-ridge", "spectrum-logreg", "spectrum-svm")


def synth_image(rng: np.random.Generator, label: str, size: int = 64) -> np.ndarray:
    """RGB uint8: blurred noise; `gan` adds a period-2 checkerboard, `edited` a period-4
    pattern in one half (a local manipulation)."""
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.normal(size=(size, size)), 1.5)
    base = 128 + 40 * base / base.std()
    yy, xx = np.indices((size, size))
    if label == "gan":
        amp = rng.uniform(12, 20)
        base = base + amp * ((-1.0) ** (xx + yy) + 0.5 * (-1.0) ** xx)
    elif label == "edited":
        amp = rng.uniform(12, 20)
        patt = amp * np.cos(np.pi * xx / 2) * np.cos(np.pi * yy / 2)
        base = base + np.where(yy < size // 2, patt, 0.0)
    tint = rng.uniform(0.9, 1.1, 3)
    img = np.clip(base[..., None] * tint, 0, 255)
    return img.astype(np.uint8)


def make_manifest(
    root: Path,
    n_per: dict[str, int] | None = None,
    sources: tuple[str, ...] = ("alpha", "beta"),
    labels: tuple[str, ...] = ("real", "gan"),
    seed: int = 0,
    size: int = 64,
    frames: int = 1,
) -> Path:
    """A prepared-style folder: crops/*.png, manifest.csv, prepare.json. Returns the CSV."""
    from PIL import Image

    n_per = n_per or {"train": 24, "val": 12, "test": 12}
    rng = np.random.default_rng(seed)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, n in n_per.items():
        for src in sources:
            for label in labels:
                for i in range(n):
                    group = f"{src}_{label}_{split}_{i // frames}"
                    rel = f"crops/{src}_{label}_{split}_{i}.png"
                    Image.fromarray(synth_image(rng, label, size)).save(root / rel)
                    rows.append(
                        {
                            "path": rel,
                            "label": label,
                            "source": src,
                            "group": group,
                            "split": split,
                            "original": group if frames > 1 else rel,
                            "frame": i % frames if frames > 1 else -1,
                        }
                    )
    import pandas as pd

    df = pd.DataFrame(rows)
    df.to_csv(root / "manifest.csv", index=False)
    (root / "prepare.json").write_text(json.dumps({"crop_size": size, "keep_whole": True}))
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def synth_manifest(tmp_path_factory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("synth"))


def _cfg(manifest: Path, name: str, out: Path, **data):
    from unmask.config import from_dict
    from unmask.training.config import TrainConfig

    return from_dict(
        TrainConfig,
        {
            "data": {"manifest": str(manifest), **data},
            "detector": {"name": name},
            "classical": {"feature_size": 64},
            "output": str(out),
        },
    )


def test_registered_as_classical():
    assert set(CLASSICAL) <= set(list_detectors("classical"))
    for name in CLASSICAL:
        pipe = create_detector(name, num_classes=2, feature_size=32)
        assert [s for s, _ in pipe.steps] == ["features", "scale", "clf"]


def test_pipeline_end_to_end_on_images(rng):
    imgs = np.stack([synth_image(rng, lb) for lb in ["real", "gan"] * 20])
    y = np.array([0, 1] * 20)
    pipe = create_detector("spectrum-logreg", feature_size=64).fit(imgs, y)
    assert pipe.predict_proba(imgs).shape == (40, 2)
    assert (pipe.predict(imgs) == y).mean() > 0.9


@pytest.mark.parametrize("name", CLASSICAL)
def test_train_save_reload_identical(synth_manifest, tmp_path, name):
    from unmask.data.manifest import read_manifest
    from unmask.inference.classical_predictor import ClassicalPredictor
    from unmask.inference.loader import load_predictor
    from unmask.inference.predictor import Predictor, p_fake
    from unmask.metrics import roc_auc
    from unmask.training.classical import train_classical

    out = train_classical(_cfg(synth_manifest, name, tmp_path / name), progress=False)
    meta = json.loads((out / "model.json").read_text())
    assert meta["kind"] == "classical" and meta["classes"] == ["real", "fake"]
    assert meta["preprocess"]["crop_size"] == 64
    assert 0.0 <= meta["threshold"] <= 1.0 and "balanced accuracy" in meta["threshold_rule"]
    assert meta["metrics"]["val"]["auc"] > 0.9
    assert not list(out.glob("*.pkl")) and not list(out.glob("*.joblib"))

    pred = load_predictor(out)
    assert isinstance(pred, ClassicalPredictor) and isinstance(pred, Predictor)
    test = read_manifest(synth_manifest, split="test")
    from PIL import Image

    crops = [np.asarray(Image.open(p).convert("RGB")) for p in test["abs_path"]]
    y = (test["label"] != "real").to_numpy().astype(int)
    proba = pred.predict_proba(crops)
    assert proba.shape == (len(crops), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert roc_auc(y, p_fake(proba)) > 0.95
    # a second load gives bit-identical scores
    again = load_predictor(out).predict_proba(crops)
    np.testing.assert_array_equal(again, proba)
    emb = pred.embed(crops)
    assert emb.shape[0] == len(crops) and emb.dtype == np.float32


def test_numpy_scorer_matches_sklearn_pipeline(rng):
    from unmask.detectors.classical import ArrayModel, calibrate

    imgs = np.stack([synth_image(rng, lb) for lb in ["real", "gan", "edited"] * 12])
    y3 = np.array([0, 1, 2] * 12)
    for name in CLASSICAL:
        for k, y in ((2, np.minimum(y3, 1)), (3, y3)):
            pipe = create_detector(name, num_classes=k, feature_size=32)
            feats = pipe[0].transform(imgs)
            pipe[1:].fit(feats, y)
            if not hasattr(pipe[-1], "predict_proba"):
                calibrate(pipe, pipe[1].transform(feats), y)
            am = ArrayModel.from_pipeline(pipe)
            np.testing.assert_allclose(
                am.predict_proba_features(feats),
                pipe.predict_proba(imgs),
                atol=1e-9,
                err_msg=f"{name} k={k}",
            )


def test_three_class(synth_manifest, tmp_path):
    from unmask.inference.loader import load_predictor
    from unmask.training.classical import train_classical

    root = tmp_path / "three"
    man = make_manifest(
        root,
        {"train": 16, "val": 8, "test": 8},
        sources=("alpha",),
        labels=("real", "gan", "edited"),
        seed=3,
    )
    out = train_classical(
        _cfg(man, "spectrum-logreg", tmp_path / "m3", num_classes=3), progress=False
    )
    pred = load_predictor(out)
    assert pred.classes == ("real", "gan", "edited")
    m = json.loads((out / "model.json").read_text())["metrics"]["val"]["multiclass"]
    assert m["accuracy"] > 0.6  # chance: 1/3
    assert m["macro_auc_ovr"] > 0.8
    assert len(m["confusion"]) == 3


def test_one_class_train_is_a_clear_error(synth_manifest, tmp_path):
    from unmask.errors import UnmaskError
    from unmask.training.classical import train_classical

    root = tmp_path / "one"
    man = make_manifest(root, {"train": 4, "val": 2}, sources=("a",), labels=("real",))
    with pytest.raises(UnmaskError, match="class"):
        train_classical(_cfg(man, "spectrum-logreg", tmp_path / "m"), progress=False)


def test_feature_cache_is_reused(synth_manifest):
    from unmask.data.manifest import read_manifest
    from unmask.features.extract import extract_files

    paths = list(read_manifest(synth_manifest, split="test")["abs_path"])[:5]
    cache = synth_manifest.parent / ".cache" / "t"
    a = extract_files(paths, "spectrum", 32, cache, jobs=1, progress=False)
    assert len(list(cache.glob("*.npy"))) == 5
    b = extract_files(paths, "spectrum", 32, cache, jobs=1, progress=False)
    np.testing.assert_array_equal(a, b)
