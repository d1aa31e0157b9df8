"""`unmask bench`: per-source figures, fakes-only sources against all reals, LOSO refit."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from test_classical import make_manifest
from unmask.metrics import expected_calibration_error, tpr_at_fpr


def test_tpr_at_fpr_hand_made():
    y = np.array([0] * 10 + [1] * 4)
    s = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.85, 0.65, 0.05])
    # at most 1 of 10 reals flagged (10%): threshold just above 0.8 -> fakes 0.95, 0.85
    assert tpr_at_fpr(y, s, 0.10) == pytest.approx(0.5)
    # 0% FPR: above the highest real (0.9) -> only 0.95
    assert tpr_at_fpr(y, s, 0.0) == pytest.approx(0.25)
    assert tpr_at_fpr(y, s, 1.0) == pytest.approx(1.0)
    assert math.isnan(tpr_at_fpr([1, 1], [0.2, 0.3], 0.05))


def test_ece_hand_made():
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == pytest.approx(0.0)
    # all in one bin at 0.75 with half fake: |0.5 - 0.75| = 0.25
    assert expected_calibration_error([0, 1, 0, 1], [0.75] * 4) == pytest.approx(0.25)
    assert expected_calibration_error([1, 1], [0.05, 0.05]) == pytest.approx(0.95)


@pytest.fixture(scope="module")
def bench_setup(tmp_path_factory):
    from doubles.models import tiny_torch_model
    from unmask.evaluation.compose import compose_models

    root = tmp_path_factory.mktemp("bench")
    man = make_manifest(root / "d", {"val": 8, "test": 8}, sources=("a", "b"), size=64)
    df = pd.read_csv(man)
    # source b holds fakes only (like a GAN source with no matching reals)
    df = df[~((df["source"] == "b") & (df["label"] == "real"))]
    df.to_csv(man, index=False)
    m1 = tiny_torch_model(root / "m1", seed=1)
    m2 = tiny_torch_model(root / "m2", seed=2)
    combo = compose_models(
        [m1, m2], ["one", "two"], man, rule="max", out=root / "combo", progress=False
    )
    return root, man, m1, combo


def test_bench_per_source_and_files(bench_setup, tmp_path):
    from unmask.evaluation.bench import BenchModel, bench

    root, man, m1, combo = bench_setup
    res = bench(
        [BenchModel("single", str(m1)), BenchModel("combo", str(combo))],
        man, tmp_path, n_boot=20, progress=False,
    )  # fmt: skip
    assert res["sources"] == ["a", "b"]
    a, b = res["table"]["single"]["a"], res["table"]["single"]["b"]
    assert (a["n_fake"], a["n_real"]) == (8, 8)
    # fakes-only source b is compared with every real of the split (the 8 reals of a)
    assert (b["n_fake"], b["n_real"]) == (8, 8) and b["compared"].startswith("fakes")
    for f in (a, b):
        assert 0.0 <= f["auc"] <= 1.0 and 0.0 <= f["ece"] <= 1.0
        assert 0.0 <= f["tpr_at_1fpr"] <= f["tpr_at_5fpr"] + 1e-12 <= 1.0 + 1e-12
    assert res["table"]["combo"]["a"]["fusion_refit"] is True
    assert res["table"]["single"]["a"]["fusion_refit"] is False
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["table"]["combo"]["b"]["n_fake"] == 8
    assert (tmp_path / "bench.png").stat().st_size > 1000
    assert "TPR@1%" in (tmp_path / "bench.md").read_text()
    capped = bench(
        [BenchModel("combo", str(combo))],
        man,
        tmp_path / "cap",
        n_boot=0,
        progress=False,
        max_per_source=3,
    )
    assert (
        capped["table"]["combo"]["a"]["n_fake"] == 3
        and capped["table"]["combo"]["b"]["n_real"] == 3
    )
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert {"p_fake_single", "p_fake_combo"} <= set(scores.columns) and len(scores) == 24


def test_bench_refit_uses_other_sources_only(bench_setup, tmp_path):
    """Without b, val holds a's rows; without a, the other sources hold fakes only, so the
    fusion is fitted on every val row but a's fakes, and says so."""
    import pandas as pd

    from unmask.evaluation.bench import BenchModel, bench, refit_rows

    root, man, _, combo = bench_setup
    val = pd.read_csv(man).query("split == 'val'")
    keep_b, _ = refit_rows(val, "b")
    assert set(val["source"][keep_b]) == {"a"}
    keep_a, note = refit_rows(val, "a")
    assert not ((val["source"] == "a") & (val["label"] != "real"))[keep_a].any()
    assert "fakes" in note
    res = bench([BenchModel("combo", str(combo))], man, tmp_path, n_boot=0, progress=False)
    assert "every source but b" in res["table"]["combo"]["b"]["fusion_fitted_on"]
    res = bench(
        [BenchModel("c", str(combo))], man, tmp_path / "k", n_boot=0, refit=False, progress=False
    )
    assert res["table"]["c"]["a"]["fusion_fitted_on"] == "saved"


def test_bench_cli_source_placeholder(bench_setup, tmp_path, capsys):
    import shutil

    from unmask.cli import main

    root, man, m1, _ = bench_setup
    shutil.copytree(m1, tmp_path / "loso" / "a")  # a model "trained without a"; none for b
    rc = main(["bench", str(man), "--model", f"x={tmp_path}/loso/{{source}}", "-o", str(tmp_path / "o"),
               "--bootstrap", "0", "--quiet"])  # fmt: skip
    assert rc == 0
    res = json.loads((tmp_path / "o" / "bench.json").read_text())
    assert "auc" in res["table"]["x"]["a"] and "no model" in res["table"]["x"]["b"]["error"]
    assert (
        main(["bench", str(man), "--model", "a=b=c", "-o", str(tmp_path / "p"), "--perturb", "zzz"])
        == 2
    )


def test_breakdowns_by_method_and_video_hand_made():
    from unmask.evaluation.bench import breakdowns, format_breakdowns

    df = pd.DataFrame(
        {
            "source": ["v"] * 8,
            "label": ["real"] * 4 + ["edited"] * 4,
            "method": ["orig"] * 4 + ["swap", "swap", "reenact", "reenact"],
            "group": ["g1"] * 8,
            "original": ["r.mp4"] * 4 + ["s.mp4", "s.mp4", "t.mp4", "t.mp4"],
            "frame": [0, 5, 10, 15, 0, 5, 0, 5],
        }
    )
    y = np.array([0] * 4 + [1] * 4)
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.35, 0.15])
    own = sel = np.ones(8, bool)
    got = breakdowns(df, own, sel, y, score, thr=0.5)
    # swap fakes above every real: AUC 1; reenact fakes 0.35, 0.15 vs reals 0.1..0.4
    assert got["by_method"]["swap"] == {"n_fake": 2, "auc": 1.0}
    assert got["by_method"]["reenact"]["auc"] == pytest.approx(4 / 8)
    videos = {v["video"]: v for v in got["videos"]}
    assert videos["s.mp4"]["score"] == pytest.approx(0.85) and videos["s.mp4"]["verdict"] == "fake"
    assert videos["t.mp4"]["verdict"] == "real" and videos["r.mp4"]["frames"] == 4
    md = format_breakdowns({"table": {"m": {"v": got}}})
    assert any("reenact" in line for line in md) and any("s.mp4" in line for line in md)
    # still images and a single fake method: no breakdown
    still = df.assign(frame=-1, method="one")
    assert breakdowns(still, own, sel, y, score, 0.5) == {}


def test_bench_size_matched_auc_of_fakes_only_sources(bench_setup, tmp_path):
    from unmask.evaluation.bench import BenchModel, bench

    root, man, m1, combo = bench_setup
    res = bench([BenchModel("single", str(m1))], man, tmp_path, n_boot=0, progress=False)
    assert res["table"]["single"]["b"]["auc_size_matched"] is None  # no crop boxes
    boxed = man.parent / "boxed.csv"
    pd.read_csv(man).assign(box_x0=0, box_y0=0, box_x1=64, box_y1=64).to_csv(boxed, index=False)
    res = bench([BenchModel("single", str(m1))], boxed, tmp_path, n_boot=0, progress=False)
    a, b = res["table"]["single"]["a"], res["table"]["single"]["b"]
    assert "auc_size_matched" not in a  # a source with both classes is already its own match
    # every face of the tiny manifest has the same size: matching changes nothing
    assert b["size_matched_cover"] == 1.0
    assert b["auc_size_matched"] == pytest.approx(b["auc"])
    assert "size-matched" in (tmp_path / "bench.md").read_text()


def test_size_matched_hand_made():
    from unmask.evaluation.bench import size_matched

    # reals: half small, half large; fakes: large; the score is the face size
    side = np.array([100.0] * 4 + [400.0] * 4 + [400.0] * 4 + [3000.0])
    y = np.array([0] * 8 + [1] * 5)
    got = size_matched(y, side / 1000.0, side)
    assert got["auc_size_matched"] == pytest.approx(0.5)  # the 3000 px fake has no reals near
    assert got["size_matched_cover"] == pytest.approx(4 / 5)
    unknown = size_matched(y, side, np.full(13, np.nan))
    assert unknown == {"auc_size_matched": None, "size_matched_cover": None}
