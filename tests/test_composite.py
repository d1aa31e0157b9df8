"""Composite models and native-pixel tile inputs, end to end on tiny random members:
compose on a val split -> save -> load -> identical scores; `driver` in detect's JSON/CSV;
eval cuts tiles from the manifest's originals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmask.data.tiles import TileSpec, cut_tiles

TILES = TileSpec(size=32, count=4, region="face", align=8)


def _image(rng, label: str) -> np.ndarray:
    img = rng.integers(60, 200, (80, 96, 3)).astype(np.uint8)
    if label != "real":  # a periodic pattern a net could pick up
        img[::2, ::2] = 255
    return img


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """A prepared-style folder whose rows point at their originals and crop boxes."""
    root = tmp_path_factory.mktemp("man")
    (root / "crops").mkdir()
    (root / "originals").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for split, n in (("train", 4), ("val", 10), ("test", 4)):
        for i in range(n):
            label = "real" if i % 2 == 0 else "gan"
            img = _image(rng, label)
            orig = root / "originals" / f"{split}{i}.png"
            Image.fromarray(img).save(orig)
            box = (8, 4, 72, 68)
            crop = img[box[1] : box[3], box[0] : box[2]]
            Image.fromarray(crop).save(root / "crops" / f"{split}{i}.png")
            rows.append(
                {
                    "path": f"crops/{split}{i}.png",
                    "label": label,
                    "source": "s",
                    "group": f"{split}{i}",
                    "split": split,
                    "original": str(orig),
                    "frame": -1,
                    "face_index": 0,
                    **box_columns(box),
                }
            )
    write_manifest(root, rows, {"crop_size": 64})
    return root


def box_columns(box) -> dict:
    """A manifest row's face box and the optional columns left empty."""
    return {
        **dict(zip(("box_x0", "box_y0", "box_x1", "box_y1"), box, strict=True)),
        "det_score": "",
        "landmarks": "",
        "method": "",
        "parent": "",
    }


def write_manifest(root, rows: list[dict], preprocess: dict) -> Path:
    """root/manifest.csv from `rows` and the prepare.json naming `preprocess`."""
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (root / "prepare.json").write_text(json.dumps({"preprocess": preprocess}))
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> tuple[Path, Path]:
    from doubles.models import tiny_torch_model

    root = tmp_path_factory.mktemp("members")
    return (
        tiny_torch_model(root / "crop", seed=1),
        tiny_torch_model(root / "artifact", tiles=TILES, seed=2),
    )


def test_tile_predictor_is_softmax_of_mean_tile_logits(members):
    import torch

    from unmask.data.extract import Face
    from unmask.inference.loader import load_predictor

    pred = load_predictor(members[1])
    assert pred.needs.tiles == (TILES,)
    rng = np.random.default_rng(3)
    img = _image(rng, "gan")
    tiles = cut_tiles(img, (8, 4, 72, 68), TILES)
    s = pred.predict([Face(img[4:68, 8:72], None, {TILES: tiles})])
    with torch.no_grad():
        logits = pred.model(pred.preprocess_tiles([Face(img, None, {TILES: tiles})]))
    expected = torch.softmax(logits.mean(0, keepdim=True), 1).numpy()
    np.testing.assert_allclose(s.proba, expected, atol=1e-6)
    assert s.driver == [None]
    from unmask.errors import UnmaskError

    with pytest.raises(UnmaskError, match="tiles"):
        pred.predict_proba([img])  # a crop alone is not what this model scores


@pytest.mark.parametrize("rule", ["logistic", "auto"])  # max: the CLI test
def test_compose_save_load_identical_scores(members, manifest, tmp_path, rule):
    from unmask.evaluation.compose import compose_models
    from unmask.evaluation.scoring import score_row_faces
    from unmask.inference.composite import fuse
    from unmask.inference.loader import load_predictor
    from unmask.modelfile import read_saved_model

    out = compose_models(
        list(members), ["crop", "artifact"], manifest, rule, tmp_path / "combo", progress=False
    )
    m = read_saved_model(out)
    assert m.kind == "composite" and [x.name for x in m.fusion.members] == ["crop", "artifact"]
    assert m.fusion.rule in ("max", "logistic") and (rule == "auto" or m.fusion.rule == rule)
    # the composite's threshold protects every real source (at most 5% of its val reals)
    assert 0 <= m.threshold <= 1 and m.threshold_rule.startswith("fpr_cap_val")
    assert m.training["threshold_max_fpr"] == 0.05
    for rate in m.metrics["val"]["fpr_by_real_source"].values():
        assert rate <= 0.05
    assert (out / "members" / "artifact" / "weights.safetensors").read_bytes() == (
        members[1] / "weights.safetensors"
    ).read_bytes()
    from unmask.data.manifest import read_manifest

    test = read_manifest(manifest, split="test")
    a = score_row_faces(load_predictor(out), test, progress=False)
    b = score_row_faces(load_predictor(out), test, progress=False)
    np.testing.assert_array_equal(a.proba, b.proba)
    assert a.driver == b.driver and set(a.driver) <= {"crop", "artifact"}
    # the fused score is the rule applied to the members' own scores
    cols = [
        1 - score_row_faces(load_predictor(d), test, progress=False).proba[:, 0] for d in members
    ]
    score, drive = fuse(np.stack(cols, 1), m.fusion)
    np.testing.assert_allclose(a.proba[:, 1], score, atol=1e-6)
    assert a.driver == [["crop", "artifact"][i] for i in drive]


def test_compose_cli_and_detect_driver_in_json_and_csv(members, manifest, tmp_path, capsys):
    from unmask.cli import main

    out = tmp_path / "combo"
    args = ["compose", *map(str, members), "--names", "crop,artifact", "--val", str(manifest)]
    assert main([*args, "--rule", "max", "-o", str(out)]) == 0
    assert "saved composite" in capsys.readouterr().out
    img = manifest / "originals" / "test1.png"
    assert main(["detect", str(img), "--model", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out, parse_constant=_no_nan)
    face = doc["results"][0]["faces"][0]
    assert face["driver"] in ("crop", "artifact")
    table = tmp_path / "faces.csv"
    assert main(["detect", str(img), "--model", str(out), "--csv", str(table)]) == 0
    row = next(csv.DictReader(table.open()))
    assert row["driver"] == face["driver"]
    assert main(["detect", str(img), "--model", str(out)]) == 0
    assert f"driver: {face['driver']}" in capsys.readouterr().out
    # explain runs per member: one Grad-CAM per CNN member, in out/<member>/
    assert main(["explain", str(img), "--model", str(out), "-o", str(tmp_path / "why")]) == 0
    assert {p.parent.name for p in (tmp_path / "why").rglob("*.png")} == {"crop", "artifact"}
    # a second compose into the same folder is refused, not merged
    assert main([*args, "-o", str(out)]) == 2


def test_single_models_have_no_driver(members, manifest, capsys):
    from unmask.cli import main

    img = manifest / "originals" / "test0.png"
    assert main(["detect", str(img), "--model", str(members[0]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out, parse_constant=_no_nan)
    assert doc["results"][0]["faces"][0]["driver"] is None


def test_eval_on_manifest_cuts_tiles_from_originals(members, manifest):
    from unmask.data.extract import face_from_row
    from unmask.data.manifest import read_manifest
    from unmask.evaluation.report import evaluate
    from unmask.inference.loader import load_predictor

    pred = load_predictor(members[1])
    test = read_manifest(manifest, split="test")
    report, proba = evaluate(pred, test, n_boot=0, progress=False)
    assert proba["none"].shape == (len(test), 2)
    # the same as cutting the tiles by hand from each decoded original
    blank = np.zeros((64, 64, 3), np.uint8)  # a tile model reads no crop
    faces = [face_from_row(r, [TILES], crop=blank) for r in test.to_dict("records")]
    img = np.asarray(Image.open(test["original"][0]).convert("RGB"))
    np.testing.assert_array_equal(faces[0].tiles[TILES], cut_tiles(img, (8, 4, 72, 68), TILES))
    by_hand = pred.predict(faces)
    np.testing.assert_allclose(proba["none"], by_hand.proba, atol=1e-6)


def test_hostile_member_name_and_nesting(members, tmp_path):
    import shutil

    from unmask.errors import UnmaskError
    from unmask.evaluation.compose import compose_models
    from unmask.inference.loader import load_predictor

    with pytest.raises(UnmaskError):
        compose_models(list(members), ["../x", "y"], tmp_path, "max", tmp_path / "c")
    # a composite whose member is itself a composite is refused
    d = tmp_path / "outer"
    (d / "members").mkdir(parents=True)
    shutil.copytree(members[0], d / "members" / "a")
    meta = json.loads((members[0] / "model.json").read_text())
    meta.update(
        kind="composite",
        detector={"name": "composite", "family": "composite", "kwargs": {}},
        input=None,
        fusion={"rule": "max", "members": [{"name": "a", "a": 1, "b": 0, "weight": 0}], "bias": 0},
    )
    (d / "model.json").write_text(json.dumps(meta))
    assert load_predictor(d).fusion.rule == "max"  # one level is fine
    shutil.copytree(d, tmp_path / "outer2" / "members" / "a")
    (tmp_path / "outer2" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(UnmaskError, match="composite"):
        load_predictor(tmp_path / "outer2")


def _no_nan(name: str):
    raise AssertionError(f"{name} in JSON output")


def test_auto_rule_is_chosen_on_held_out_sources_hand_made():
    """Two specialists: m0 sees the fakes of sources a and c (GAN-like), m1 those of b and is
    inverted on a's (as the blend detector is on some GAN faces). Fitted without a, stacking
    trusts m1 and fails on a; the max of calibrated scores keeps m0's signal. The
    leave-one-source-out choice picks max where the pooled log-loss picks stacking."""
    from unmask.evaluation.compose import choose_rule, held_out_source_aucs

    rng = np.random.default_rng(0)
    n = 60
    src = np.repeat(["a", "b", "c"], 2 * n)
    y = np.tile([0] * n + [1] * n, 3)
    m0, m1 = rng.uniform(0.3, 0.6, 6 * n), rng.uniform(0.3, 0.6, 6 * n)
    fake = {s: (src == s) & (y == 1) for s in "abc"}
    for s in "ac":
        m0[fake[s]] = rng.uniform(0.6, 0.9, n)
    m1[fake["a"]] = rng.uniform(0.01, 0.2, n)  # inverted on a's fakes
    m1[fake["b"]] = rng.uniform(0.6, 0.9, n)
    p = np.stack([m0, m1], 1)
    held = {r: held_out_source_aucs(p, y, src, r) for r in ("max", "logistic")}
    assert set(held["max"]) == {"a", "b", "c"}
    assert held["max"]["a"] > 0.9 and held["logistic"]["a"] < 0.5
    rule, record = choose_rule(p, y, src)
    assert rule == "max" and "held-out" in record["method"]
    assert record["rules"]["logistic"]["held_out_source_auc"] == held["logistic"]
    # without sources the cross-validated log-loss decides (here: stacking)
    pooled, rec = choose_rule(p, y)
    assert pooled == "logistic" and rec["method"].startswith("5-fold")


def test_tile_member_sits_out_images_smaller_than_its_tiles_hand_made():
    from unmask.inference.composite import fuse, sigmoid, tile_usable
    from unmask.modelfile import Fusion, FusionMember

    usable = tile_usable([0, 64], [(40, 40), (64, 100), (100, 63), None])
    assert usable.tolist() == [[True, False], [True, True], [True, False], [True, True]]
    # a crop box narrower than a tile: the tiles would show mostly the face's surroundings
    usable = tile_usable([0, 64], [(640, 360), (640, 360), None], [60.0, 64.0, float("nan")])
    assert usable.tolist() == [[True, False], [True, True], [True, True]]
    p = np.array([[0.2, 0.99], [0.2, 0.99]])
    mask = np.array([[True, False], [False, False]])  # row 2: nobody may score -> everybody
    top = Fusion("max", (FusionMember("crop"), FusionMember("artifact")))
    score, driver = fuse(p, top, usable=mask)
    np.testing.assert_allclose(score, [0.2, 0.99])
    assert driver.tolist() == [0, 1]
    stack = Fusion(
        "logistic", (FusionMember("crop", weight=1.0), FusionMember("artifact", weight=2.0))
    )
    score, _ = fuse(p, stack, usable=mask)
    z = np.log(p / (1 - p))
    np.testing.assert_allclose(score, sigmoid(np.array([z[0, 0], z[1, 0] + 2 * z[1, 1]])))


def test_composite_scores_a_tiny_image_without_its_tile_member(members, manifest, tmp_path):
    from unmask.data.extract import Face
    from unmask.data.tiles import cut_tiles
    from unmask.evaluation.compose import compose_models
    from unmask.inference.loader import load_predictor

    out = compose_models(
        list(members), ["crop", "artifact"], manifest, rule="max", out=tmp_path / "c",
        progress=False,
    )  # fmt: skip
    pred = load_predictor(out)
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)  # smaller than the 32 px tiles
    face = dict(crop=np.zeros((64, 64, 3), np.uint8), tiles={TILES: cut_tiles(small, None, TILES)})
    alone = pred.members["crop"].predict([Face(face["crop"])]).proba[0, 1]
    got = pred.predict([Face(**face, image_size=(24, 24))])
    assert got.driver == ["crop"]
    narrow = pred.predict([Face(**face, box=(100, 50, 131, 81), image_size=(640, 360))])
    assert narrow.driver == ["crop"] and narrow.proba[0, 1] == pytest.approx(got.proba[0, 1])
    a, b = pred.fusion.members[0].a, pred.fusion.members[0].b
    z = a * np.log(alone / (1 - alone)) + b
    assert got.proba[0, 1] == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-6)
    # the size unknown, or large enough: both members count, as before
    both = pred.predict([Face(**face), Face(**face, image_size=(32, 40))])
    np.testing.assert_allclose(both.proba[0], both.proba[1])


def test_row_image_sizes_from_a_manifest_hand_made():
    import pandas as pd

    from unmask.evaluation.scoring import row_image_sizes

    df = pd.DataFrame({"orig_width": ["640", "", None, "x"], "orig_height": [360, 10, 5, 7]})
    assert row_image_sizes(df) == [(640, 360), None, None, None]
    assert row_image_sizes(pd.DataFrame({"path": ["a.png"]})) == [None]


def test_members_with_one_input_share_it_and_score_as_alone(members, manifest, tmp_path):
    """Two crop members with the same size and normalisation (as the shipped default's
    three): the composite resizes and normalises the crops once, and each member's score
    is the one it gives alone; a tile member makes its own inputs."""
    from doubles.models import tiny_torch_model
    from unmask.data.extract import Face
    from unmask.evaluation.compose import compose_models
    from unmask.inference.loader import load_predictor

    twin = tiny_torch_model(tmp_path / "twin", seed=7)
    dirs = [members[0], twin, members[1]]
    out = compose_models(
        dirs, ["crop", "twin", "artifact"], manifest, "max", tmp_path / "c", progress=False
    )
    combo = load_predictor(out)
    crop, twin_p, tile = combo.members.values()
    assert crop.input_key == twin_p.input_key != tile.input_key
    rng = np.random.default_rng(5)
    img = _image(rng, "gan")
    face = Face(img[4:68, 8:72], None, {TILES: cut_tiles(img, (8, 4, 72, 68), TILES)})
    faces = [face, face]
    calls = []
    for m in combo.members.values():
        made = m.network_inputs
        m.network_inputs = lambda fs, made=made, m=m: calls.append(m) or made(fs)
    p = combo.member_p_fake(faces)
    assert calls == [crop, tile]  # the twin scored the crop member's inputs
    alone = [1 - load_predictor(d).predict(faces).proba[:, 0] for d in dirs]
    np.testing.assert_array_equal(p, np.stack(alone, axis=1))
