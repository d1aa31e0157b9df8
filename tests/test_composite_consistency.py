"""One image, one score: `unmask detect --json`, `unmask eval` (on a manifest `unmask prepare`
made) and the server's `/v1/detect` give the same P(fake) and the same `driver` for
examples/astronaut.jpg, for a composite of a tile member and a crop member built here from
tiny random models, and for whatever model ships as the default (issue 13).

Every path finds the face, cuts the crop (and the tiles from the decoded original), and
scores it on its own; a path that decodes, boxes, resizes or fuses differently shows here.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_composite import box_columns, write_manifest
from unmask.data.spec import PreprocessSpec
from unmask.data.tiles import TileSpec

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
SPEC = PreprocessSpec(crop_size=64)  # the spec `unmask prepare --size 64` writes
TILES = TileSpec(size=32, count=4, region="face", align=8)
# detect's JSON rounds P(fake) to 6 decimals and eval's scores.csv to 6 significant digits
ATOL = 2e-6


def _no_nan(name: str):
    raise AssertionError(f"{name} in JSON output")


def _val_manifest(root: Path) -> Path:
    """Val rows cut from jittered copies of the astronaut (shifted box, brightness, noise):
    member scores spread around the astronaut's own, so the calibration fitted on them
    keeps the fused score off 0 and 1 for the astronaut."""
    img = np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(np.float64)
    rng = np.random.default_rng(0)
    (root / "crops").mkdir(parents=True)
    (root / "originals").mkdir()
    rows = []
    for i in range(12):
        dx, dy = (int(v) for v in rng.integers(-12, 13, 2))
        jit = img * rng.uniform(0.8, 1.2) + rng.normal(0, 4, img.shape)
        jit = np.clip(jit, 0, 255).astype(np.uint8)
        orig = root / "originals" / f"{i}.png"
        Image.fromarray(jit).save(orig)
        box = (150 + dx, 45 + dy, 300 + dx, 195 + dy)
        crop = Image.fromarray(jit[box[1] : box[3], box[0] : box[2]]).resize((64, 64))
        crop.save(root / "crops" / f"{i}.png")
        rows.append(
            {
                "path": f"crops/{i}.png",
                "label": "real" if i % 2 == 0 else "gan",
                "source": "s",
                "group": str(i),
                "split": "val",
                "original": str(orig),
                "frame": -1,
                "face_index": 0,
                **box_columns(box),
            }
        )
    return write_manifest(root, rows, dataclasses.asdict(SPEC))


def _standardised(combo: Path, manifest: Path) -> None:
    """Re-write the composite's calibration as each member's z-score on val. The tiny random
    members barely move (the crop member's P(fake) spans ~1e-3), so the fitted Platt slope is
    ~0 and the fused score would be the same constant whatever crop a path cut: the test
    could not fail. Standardised, the fused score moves with the pixels as the members do."""
    from unmask.data.manifest import read_manifest
    from unmask.evaluation.scoring import score_rows
    from unmask.inference.composite import logit
    from unmask.inference.loader import load_predictor
    from unmask.modelfile import member_dir, read_saved_model, write_saved_model

    saved = read_saved_model(combo)
    df = read_manifest(manifest, split="val")
    members = []
    for m in saved.fusion.members:
        pred = load_predictor(member_dir(combo, m.name), member=True)
        z = logit(score_rows(pred, df, progress=False)[:, 1])
        a, b = 1 / z.std(), -z.mean() / z.std()
        if m.size_edges:  # only the astronaut's bin (box side ~136 px) standardises: a
            # path that loses the face's size (global b) or mis-bins it scores differently
            sizes = {"size_a": (a, a, a), "size_b": (b - 3, b, b + 3)}
            members.append(dataclasses.replace(m, a=a, b=b + 1.5, **sizes))
        else:
            members.append(dataclasses.replace(m, a=a, b=b))
    fusion = dataclasses.replace(saved.fusion, members=tuple(members))
    write_saved_model(combo, dataclasses.replace(saved, fusion=fusion))


@pytest.fixture(scope="module")
def tiny_composite(tmp_path_factory) -> Path:
    from doubles.models import tiny_torch_model
    from unmask.evaluation.compose import compose_models

    root = tmp_path_factory.mktemp("tiny_composite")
    artifact = tiny_torch_model(root / "artifact", tiles=TILES, seed=2, spec=SPEC)
    blend = tiny_torch_model(root / "blend", seed=1, spec=SPEC)
    manifest = _val_manifest(root / "val")
    combo = compose_models(
        [artifact, blend],
        ["artifact", "blend"],
        manifest,
        "max",
        root / "combo",
        progress=False,
        size_edges={"artifact": (100, 200)},  # the tile member calibrated per face size
    )
    _standardised(combo, manifest)
    return combo


def _prepare_flags(spec: PreprocessSpec) -> list[str]:
    """`unmask prepare` flags that write `spec` (the model's own) to prepare.json."""
    flags = ["--margin", repr(spec.margin), "--size", str(spec.crop_size)]
    flags += ["--min-score", repr(spec.min_score), "--max-pixels", str(spec.max_pixels)]
    flags += ["--align"] * spec.align + ["--remove-background"] * spec.remove_background
    flags += ["--all-faces"] * (spec.faces == "all") + ["--keep-whole"] * spec.keep_whole
    return flags


def _cli(argv: list[str]) -> str:
    """`unmask ARGV` in this process; its stdout (it must succeed)."""
    import contextlib
    import io

    from unmask.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def _three_paths(model_dir: Path, tmp: Path) -> dict:
    """The astronaut scored through detect --json, prepare + eval, and the server."""
    from fastapi.testclient import TestClient

    from unmask.data.spec import read_prepare_spec
    from unmask.inference.loader import load_predictor
    from unmask.serving.app import create_app

    out = _cli(["detect", str(ASTRONAUT), "--model", str(model_dir), "--json"])
    detect = json.loads(out, parse_constant=_no_nan)

    predictor = load_predictor(model_dir)
    folder = tmp / "folder" / "s" / "real"
    folder.mkdir(parents=True)
    (folder / ASTRONAUT.name).write_bytes(ASTRONAUT.read_bytes())
    prep, ev = tmp / "prepared", tmp / "eval"
    args = ["prepare", str(tmp / "folder"), "-o", str(prep), *_prepare_flags(predictor.spec)]
    _cli([*args, "--splits", "0,0,1", "--workers", "1", "--no-progress"])
    assert read_prepare_spec(prep / "manifest.csv")[0] == predictor.spec
    args = ["eval", str(prep), "--model", str(model_dir), "--split", "all", "-o", str(ev)]
    _cli([*args, "--bootstrap", "0", "--workers", "1", "--quiet"])
    with open(prep / "manifest.csv") as f:
        manifest = list(csv.DictReader(f))
    with open(ev / "scores.csv") as f:
        scores = list(csv.DictReader(f))

    app = create_app(predictor, model_dir=model_dir)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post(
            "/v1/detect", files={"file": (ASTRONAUT.name, ASTRONAUT.read_bytes(), "image/jpeg")}
        )
    assert resp.status_code == 200, resp.text
    serve = json.loads(resp.text, parse_constant=_no_nan)
    return {
        "detect": detect["results"][0]["faces"],
        "manifest": manifest,
        "eval": scores,
        "serve": serve["result"]["faces"],
        "composite": predictor.meta.get("kind") == "composite",
        "members": list(getattr(predictor, "members", {})),
    }


@pytest.fixture(scope="module", params=["tiny-composite", "shipped-default"])
def paths(request, tmp_path_factory) -> dict:
    from unmask.inference.saved_model import default_model_dir

    if request.param == "tiny-composite":
        model_dir = request.getfixturevalue("tiny_composite")
    else:
        model_dir = default_model_dir()
    return _three_paths(Path(model_dir), tmp_path_factory.mktemp(request.param))


def test_detect_finds_one_face_with_a_driver_key(paths):
    faces = paths["detect"]
    assert len(faces) == 1  # the astronaut has one face
    for face in faces:
        assert "driver" in face and 0.0 <= face["p_fake"] <= 1.0
        if paths["composite"]:
            assert face["driver"] in paths["members"]
        else:
            assert face["driver"] is None


def test_prepare_boxes_the_face_detect_boxes(paths):
    (row,) = paths["manifest"]
    box = [int(float(row[c])) for c in ("box_x0", "box_y0", "box_x1", "box_y1")]
    assert box == paths["detect"][0]["box"] == paths["serve"][0]["box"]


def test_detect_eval_and_serve_give_the_same_score_and_driver(paths):
    (d,), (s,), (e,) = paths["detect"], paths["serve"], paths["eval"]
    assert s["p_fake"] == pytest.approx(d["p_fake"], abs=ATOL)
    assert float(e["p_fake"]) == pytest.approx(d["p_fake"], abs=ATOL)
    assert s["driver"] == d["driver"]
    eval_driver = e.get("driver") or None  # a single model's column is empty
    assert eval_driver == d["driver"]
    assert s["verdict"] == d["verdict"]


def test_tiny_composite_score_moves_with_the_pixels(tiny_composite, tmp_path):
    """What makes the agreement above mean something: a little noise on the same face moves
    the tiny composite's score far more than ATOL, and the score is not pinned at 0 or 1."""
    from unmask.data.manifest import read_manifest
    from unmask.evaluation.perturb import parse_perturbations
    from unmask.evaluation.scoring import score_row_faces
    from unmask.inference.loader import load_predictor

    pred = load_predictor(tiny_composite)
    df = read_manifest(tiny_composite.parent / "val" / "manifest.csv", split="val").iloc[:4]
    clean = score_row_faces(pred, df, progress=False).proba[:, 1]
    noise = parse_perturbations(["noise:0.02"])[-1]
    noisy = score_row_faces(pred, df, noise, progress=False).proba[:, 1]
    assert np.all((clean > 1e-3) & (clean < 1 - 1e-3))
    assert np.abs(noisy - clean).max() > 1e3 * ATOL
    assert not math.isclose(clean.min(), clean.max(), abs_tol=1e3 * ATOL)
