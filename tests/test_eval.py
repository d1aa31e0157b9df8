"""`unmask eval`, `unmask spectrum` and cross-validation on tiny synthetic data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from test_classical import _cfg, make_manifest, synth_image
from unmask.evaluation.perturb import NONE, Perturbation, apply, parse_perturbations
from unmask.evaluation.report import evaluate, video_scores, write_report


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    from unmask.training.classical import train_classical

    root = tmp_path_factory.mktemp("evaldata")
    man = make_manifest(
        root,
        {"train": 20, "val": 10, "test": 10},
        sources=("alpha", "beta"),
        labels=("real", "gan", "edited"),
        frames=5,
    )
    # a third source with fakes only
    import pandas as pd
    from PIL import Image

    df = pd.read_csv(man, keep_default_na=False)
    rng = np.random.default_rng(9)
    extra = []
    for i in range(8):
        rel = f"crops/gamma_{i}.png"
        Image.fromarray(synth_image(rng, "gan")).save(root / rel)
        extra.append(
            {
                "path": rel,
                "label": "gan",
                "source": "gamma",
                "group": f"g{i}",
                "split": "test",
                "original": rel,
                "frame": -1,
            }
        )
    pd.concat([df, pd.DataFrame(extra)]).to_csv(man, index=False)
    model = train_classical(_cfg(man, "spectrum-logreg", root / "model"), progress=False)
    return man, model


def test_parse_and_apply_perturbations(rng):
    ps = parse_perturbations(["jpeg:90,50", "blur:1", "resize:0.5", "noise:0.02"])
    assert ps[0] == NONE and [p.name for p in ps[1:]] == [
        "jpeg:90",
        "jpeg:50",
        "blur:1",
        "resize:0.5",
        "noise:0.02",
    ]
    img = synth_image(rng, "gan")
    for p in ps:
        out = apply(img, p, seed=1)
        assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(
        apply(img, Perturbation("noise", 0.02), 3), apply(img, Perturbation("noise", 0.02), 3)
    )
    from unmask.errors import UnmaskError

    for bad in ("jpeg", "gauss:1", "jpeg:x", "resize:2"):
        with pytest.raises(UnmaskError):
            parse_perturbations([bad])


def test_evaluate_manifest_binary_model_on_three_labels(trained, tmp_path):
    from unmask.data.manifest import read_manifest
    from unmask.inference.loader import load_predictor

    man, model = trained
    pred = load_predictor(model)
    df = read_manifest(man, split="test")
    report, proba = evaluate(pred, df, parse_perturbations(["jpeg:80"]), n_boot=50, progress=False)
    clean = report["perturbations"]["none"]
    assert clean["pooled"]["auc"] > 0.8  # gan and edited both count as fake
    assert set(clean["pooled"]["per_label"]) == {"real", "gan", "edited"}
    gamma = clean["per_source"]["gamma"]
    assert not gamma["two_classes"] and math.isnan(gamma["auc"])
    assert gamma["accuracy"] == pytest.approx(gamma["recall"])  # detection rate
    assert clean["video"]["n_groups"] == 2 * 3 * 2  # 10 frames / 5 per group, per source+label
    assert "jpeg:80" in report["perturbations"]
    written = write_report(report, df, proba, tmp_path)
    names = {p.name for p in written}
    assert {"report.json", "report.md", "roc.png", "confusion.png", "hist.png"} <= names
    rj = json.loads((tmp_path / "report.json").read_text())  # NaN -> null, valid JSON
    assert rj["perturbations"]["none"]["per_source"]["gamma"]["auc"] is None
    assert "| gamma |" in (tmp_path / "report.md").read_text()


def test_video_scores_split_by_original_and_label():
    import pandas as pd

    df = pd.DataFrame(
        {
            "group": ["v"] * 4,
            "label": ["real", "real", "edited", "edited"],
            "source": ["s"] * 4,
            "original": ["a", "a", "b", "b"],
            "frame": [0, 1, 0, 1],
        }
    )
    v = video_scores(df, np.array([0.1, 0.3, 0.8, 1.0]))
    assert sorted(v["score"].round(6)) == [0.2, 0.9]
    stills = df.assign(frame=-1)
    assert len(video_scores(stills, np.zeros(4))) == 0


def test_eval_cli_on_manifest(trained, tmp_path, capsys):
    from unmask.commands import eval as eval_cmd

    man, model = trained
    import argparse

    p = argparse.ArgumentParser()
    eval_cmd.add_arguments(p)
    args = p.parse_args(
        [
            str(man.parent),
            "--model",
            str(model),
            "-o",
            str(tmp_path / "r"),
            "--perturb",
            "blur:1",
            "--bootstrap",
            "20",
            "--quiet",
        ]
    )
    assert eval_cmd.run(args) == 0
    out = capsys.readouterr().out
    assert "pooled (frames)" in out and "robustness summary" in out
    assert (tmp_path / "r" / "report.md").is_file()


def test_eval_on_source_label_folder(trained, tmp_path):
    """A folder <source>/<label>/ goes through prepare() with the model's spec first."""
    from PIL import Image

    from unmask.commands import eval as eval_cmd

    _, model = trained
    meta = json.loads((model / "model.json").read_text())
    meta["preprocess"]["keep_whole"] = True  # synthetic noise has no faces
    meta["preprocess"]["crop_size"] = 64
    meta["preprocess"]["min_score"] = 1.0  # the face detector sees "faces" in noise
    (model / "model.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(5)
    data = tmp_path / "data"
    from PIL import PngImagePlugin

    sd = PngImagePlugin.PngInfo()  # one input says it was made by Stable Diffusion
    sd.add_text("parameters", "noise\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    for src in ("s1", "s2"):
        for lb in ("real", "gan"):
            (data / src / lb).mkdir(parents=True)
            for i in range(4):
                info = sd if (src, lb, i) == ("s1", "gan", 0) else None
                Image.fromarray(synth_image(rng, lb)).save(
                    data / src / lb / f"{i}.png", pnginfo=info
                )
    import argparse

    p = argparse.ArgumentParser()
    eval_cmd.add_arguments(p)
    args = p.parse_args(
        [str(data), "--model", str(model), "-o", str(tmp_path / "r"), "--bootstrap", "0", "--quiet"]
    )
    try:
        assert eval_cmd.run(args) == 0
    except ImportError as exc:  # pragma: no cover - data pipeline missing
        pytest.skip(f"prepare() not available: {exc}")
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["n_rows"] == 16
    assert set(rep["perturbations"]["none"]["per_source"]) == {"s1", "s2"}
    assert rep["perturbations"]["none"]["pooled"]["auc"] > 0.8
    # scores.csv: each row's original file's provenance, beside the scores (issue 23)
    import pandas as pd

    scores = pd.read_csv(tmp_path / "r" / "scores.csv", keep_default_na=False)
    assert scores["provenance"].value_counts().to_dict() == {
        "none": 15,
        "metadata: PNG parameters (Stable Diffusion)": 1,
    }


def test_provenance_column_skips_synthetic_rows_and_missing_originals(tmp_path):
    import pandas as pd
    from PIL import Image, PngImagePlugin

    from unmask.evaluation.report import provenance_column

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "x\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    Image.new("RGB", (8, 8)).save(tmp_path / "sd.png", pnginfo=info)
    sd = str(tmp_path / "sd.png")
    df = pd.DataFrame(
        {
            "original": [sd, sd, str(tmp_path / "gone.png"), float("nan")],
            "parent": ["", "crops/0.png", "", ""],  # row 2: made by `unmask synth`
        }
    )
    want = "metadata: PNG parameters (Stable Diffusion)"
    assert provenance_column(df) == [want, "", "", ""]
    assert provenance_column(df.drop(columns="original")) == ["", "", "", ""]


def test_spectrum_command(tmp_path, capsys):
    import argparse

    from unmask.commands import spectrum

    man = make_manifest(tmp_path / "d", {"train": 6}, labels=("real", "gan"))
    p = argparse.ArgumentParser()
    spectrum.add_arguments(p)
    assert (
        spectrum.run(p.parse_args([str(man), "-o", str(tmp_path / "s"), "--size", "64", "--quiet"]))
        == 0
    )
    out = tmp_path / "s"
    for f in (
        "profile_by_label.png",
        "profile_by_source.png",
        "dct_by_label.png",
        "dct_diff_by_label.png",
        "profiles.csv",
    ):
        assert (out / f).is_file(), f
    import pandas as pd

    prof = pd.read_csv(out / "profiles.csv")
    real = prof[(prof.group_by == "label") & (prof.group == "real")]
    gan = prof[(prof.group_by == "label") & (prof.group == "gan")]
    assert real["n"].iloc[0] == 12
    # the checkerboard puts power at the highest frequencies
    assert gan["mean"].iloc[-3:].mean() > real["mean"].iloc[-3:].mean()
    # a folder <source>/<label>/ works too
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "f" / "src" / "real").mkdir(parents=True)
    Image.fromarray(synth_image(rng, "real")).save(tmp_path / "f" / "src" / "real" / "a.png")
    assert (
        spectrum.run(
            p.parse_args(
                [str(tmp_path / "f"), "-o", str(tmp_path / "s2"), "--size", "32", "--quiet"]
            )
        )
        == 0
    )


def test_crossval_leave_one_source_out(tmp_path):
    from unmask.evaluation.crossval import crossval, format_matrix
    from unmask.training.classical import train_classical  # noqa: F401

    man = make_manifest(tmp_path / "d", {"train": 12, "val": 6, "test": 6}, sources=("a", "b", "c"))
    cfg = _cfg(man, "spectrum-logreg", tmp_path / "unused")
    res = crossval(cfg, tmp_path / "cv", progress=False)
    assert res["sources"] == ["a", "b", "c"]
    for held in "abc":
        cell = res["matrix"][held][held]
        assert cell["metric"] == "auc" and cell["n"] == 48 and cell["value"] > 0.8
    assert "held out" in format_matrix(res)
    assert (tmp_path / "cv" / "crossval.png").is_file()
