"""Predictors say what they score (`network_inputs`), `predict` scores exactly that on both
runtimes, and Grad-CAM explains exactly that: a crop model's map is computed on the batch it
scored, a tile model's per-tile maps land in the crop where its tiles were (issue 22)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from unmask.data.extract import Face  # noqa: E402
from unmask.data.faces import crop_square  # noqa: E402
from unmask.data.normalize import normalize_tiles  # noqa: E402
from unmask.data.tiles import TileSpec, cut_tiles, tile_origins  # noqa: E402
from unmask.inference.explain import cams_for_faces  # noqa: E402
from unmask.inference.predictor import softmax  # noqa: E402

TILES = TileSpec(size=32, count=4, region="face", align=8)
IMAGE_WH = (240, 200)
BOX = (100, 60, 180, 140)  # the face's square crop box: 80 px, off the image centre


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """Graphs exported here land in this module's cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNMASK_CACHE", str(tmp_path_factory.mktemp("unmask-cache")))
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from doubles.models import tiny_torch_model

    root = tmp_path_factory.mktemp("models")
    return {
        "crop": tiny_torch_model(root / "crop", seed=1),
        "tile": tiny_torch_model(root / "tile", tiles=TILES, seed=2),
    }


def _predictor(d: Path, runtime: str = "torch"):
    from unmask.inference.torch_predictor import TorchPredictor
    from unmask.modelfile import read_saved_model

    return TorchPredictor(d, read_saved_model(d), runtime=runtime)


def _faces(spec, n: int = 3, seed: int = 0) -> list[Face]:
    """Faces cut as stage 1 cuts them: crop = the box resized, tiles from the original."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = rng.integers(0, 256, (IMAGE_WH[1], IMAGE_WH[0], 3), dtype=np.uint8)
        crop = crop_square(img, BOX, spec.crop_size)
        out.append(Face(crop, None, {TILES: cut_tiles(img, BOX, TILES)}, BOX, IMAGE_WH))
    return out


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
@pytest.mark.parametrize("kind", ["crop", "tile"])
def test_predict_is_the_network_on_network_inputs(models, kind, runtime):
    pred = _predictor(models[kind], runtime)
    assert pred.runtime == runtime
    faces = _faces(pred.spec)
    inp = pred.network_inputs(faces)
    rows = 1 if kind == "crop" else TILES.count
    assert tuple(inp.x.shape) == (len(faces) * rows, 3, pred.input_size, pred.input_size)
    np.testing.assert_array_equal(inp.face_of, np.repeat(np.arange(len(faces)), rows))
    if kind == "tile":  # the tiles themselves, normalised as in training, face after face
        want = np.concatenate([normalize_tiles(f.tiles[TILES], pred.mean, pred.std) for f in faces])
        assert torch.equal(inp.x, torch.from_numpy(want))
    scorer = pred._onnx if runtime == "onnx" else pred.fast
    logits = pred._batches(inp.x, inp.landmarks, scorer).reshape(len(faces), rows, -1).mean(1)
    got = pred.predict(faces).proba
    assert np.array_equal(got, softmax(logits.numpy()))  # bit for bit
    np.testing.assert_allclose(got, torch.softmax(logits, 1).numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["crop", "tile"])
def test_a_cached_graph_scores_without_torch_bit_for_bit(models, kind):
    """Once a member's graph is cached, the loader scores it on ONNX Runtime alone
    (`OnnxPredictor`: no torch to import) with the same inputs, logits and scores as the
    torch-loaded member's ONNX scorer; what needs the network loads it then."""
    from unmask.inference.loader import load_predictor
    from unmask.inference.onnx_predictor import OnnxPredictor

    first = _predictor(models[kind], "onnx")  # exports and caches the graph
    again = load_predictor(models[kind])
    assert isinstance(again, OnnxPredictor) and again.input_key == first.input_key
    faces = _faces(first.spec, n=5, seed=3)
    a, b = first.network_inputs(faces), again.network_inputs(faces)
    assert np.array_equal(a.x.numpy(), b.x) and np.array_equal(a.face_of, b.face_of)
    assert np.array_equal(first.predict(faces).proba, again.predict(faces).proba)
    assert "torch_twin" not in vars(again)  # scoring needed no network
    cams = cams_for_faces(again, faces[:1])  # Grad-CAM: the twin on the same rows
    assert cams.shape[:2] == (1, 2) and np.isfinite(cams).all()


def test_tile_boxes_in_crop_are_where_cut_tiles_cut(models):
    pred = _predictor(models["tile"])
    (face,) = _faces(pred.spec, n=1)
    where = pred.network_inputs([face]).where
    scale = pred.spec.crop_size / (BOX[2] - BOX[0])
    for (x, y), box in zip(tile_origins(BOX, *IMAGE_WH, TILES), where, strict=True):
        want = np.array([x - BOX[0], y - BOX[1], x + 32 - BOX[0], y + 32 - BOX[1]]) * scale
        np.testing.assert_allclose(box, want)


def _score_then_explain(pred, faces, monkeypatch):
    """(what `predict` scored, every tensor Grad-CAM ran on, the maps) for `faces`."""
    from unmask.inference import gradcam
    from unmask.inference.explain import cams_for_faces

    scored, cam_x = [], []
    real_inputs, real_cam = pred.network_inputs, gradcam.class_activation_map

    def inputs_spy(fs):
        scored.append(real_inputs(fs))
        return scored[-1]

    def cam_spy(model, x, *args, **kwargs):
        cam_x.append(x.detach().clone())
        return real_cam(model, x, *args, **kwargs)

    monkeypatch.setattr(pred, "network_inputs", inputs_spy)
    pred.predict(faces)
    monkeypatch.setattr(gradcam, "class_activation_map", cam_spy)
    cams = cams_for_faces(pred, faces)
    assert len(cam_x) == len(pred.classes)
    return scored[0], cam_x, cams


def _tile_mask(where: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """True on the crop pixels some tile came from."""
    inside = np.zeros(shape, bool)
    for x0, y0, x1, y1 in np.rint(where).astype(int):
        inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
    return inside


def test_crop_model_cam_input_is_the_scored_input(models, monkeypatch):
    pred = _predictor(models["crop"])
    scored, cam_x, cams = _score_then_explain(pred, _faces(pred.spec), monkeypatch)
    assert cams.shape == (3, 2, pred.input_size, pred.input_size)
    assert all(torch.equal(x, scored.x) for x in cam_x)


def test_tile_model_cam_covers_the_face_where_its_tiles_were(models, monkeypatch):
    pred = _predictor(models["tile"])
    scored, cam_x, cams = _score_then_explain(pred, _faces(pred.spec), monkeypatch)
    assert all(torch.equal(x, scored.x) for x in cam_x)  # the tiles it scored
    size = pred.spec.crop_size
    assert cams.shape == (3, 2, size, size)
    inside = _tile_mask(scored.where[: TILES.count], (size, size))  # same box for every face
    assert 0.3 < inside.mean() < 0.9  # the tiles leave parts of the crop out
    mass_inside = cams[..., inside].sum() / cams.sum()
    assert mass_inside == pytest.approx(1.0) and not cams[..., ~inside].any()
    # the class this random net leans to has a map over the tiles (the other's may be 0)
    assert cams[:, 1].max() == 1.0 and (cams[:, 1][:, inside] > 0).mean() > 0.5


def test_tile_model_without_a_box_cannot_place_its_map(models):
    from unmask.errors import UnmaskError
    from unmask.inference.explain import cams_for_faces

    pred = _predictor(models["tile"])
    (face,) = _faces(pred.spec, n=1)
    with pytest.raises(UnmaskError, match="crop box"):
        cams_for_faces(pred, [Face(face.crop, None, face.tiles)])


def test_training_and_inference_normalise_tiles_alike(models):
    """A tile model trains on the very tensor it later scores (one normalisation)."""
    from unmask.training.tile_data import TileFaceDataset

    pred = _predictor(models["tile"])
    (face,) = _faces(pred.spec, n=1)
    x_train, _, _ = TileFaceDataset(face.tiles[TILES][None], [1])[0]
    assert torch.equal(x_train, pred.network_inputs([face]).x)


def _kept_result(face: Face, driver: str | None = None):
    """A detection result that kept its crop and stage-1 face (what explain is given)."""
    from unmask.inference.detect import FaceResult, FileResult

    fr = FaceResult(
        frame=-1,
        face_index=0,
        box=list(BOX),
        det_score=None,
        p_fake=0.5,
        probs={"real": 0.5, "fake": 0.5},
        verdict="fake",
        driver=driver,
        crop=face.crop,
        face=face,
    )
    return FileResult("face.png", "image", "ok", "fake", 0.5, faces=[fr])


def test_a_composite_is_explained_by_its_driving_tile_member_on_its_tiles(models):
    from types import SimpleNamespace

    from unmask.inference.explain import cams_for_faces, scored_face
    from unmask.serving.engine import explaining_member

    crop, tile = _predictor(models["crop"]), _predictor(models["tile"])
    combo = SimpleNamespace(meta={"kind": "composite"}, members={"crop": crop, "artifact": tile})
    res = _kept_result(_faces(tile.spec, n=1)[0], driver="artifact")
    name, member = explaining_member(combo, res.faces[0].driver)
    assert (name, member) == ("artifact", tile)
    cams = cams_for_faces(member, [scored_face(res.faces[0])])
    inside = _tile_mask(tile.network_inputs([res.faces[0].face]).where, cams.shape[-2:])
    assert cams[..., inside].sum() > 0 and not cams[..., ~inside].any()
    assert explaining_member(combo, "crop") == ("crop", crop)


def test_explain_result_draws_a_tile_member_and_the_json_drops_the_kept_face(models, tmp_path):
    from PIL import Image

    from unmask.inference.explain import explain_result

    tile = _predictor(models["tile"])
    res = _kept_result(_faces(tile.spec, n=1)[0])
    (path,) = explain_result(res, tile, tmp_path)
    size = tile.spec.crop_size
    assert Image.open(path).size == (3 * size, size)  # the crop and one map per class
    assert "face" not in res.to_dict()["faces"][0]


def test_a_composite_says_what_each_member_scores(models):
    from types import SimpleNamespace

    from unmask.inference.composite import CompositePredictor

    crop, tile = _predictor(models["crop"]), _predictor(models["tile"])
    combo = SimpleNamespace(members={"crop": crop, "artifact": tile})
    faces = _faces(tile.spec, n=2)
    got = CompositePredictor.network_inputs(combo, faces)
    assert list(got) == ["crop", "artifact"]
    assert torch.equal(got["crop"].x, crop.network_inputs(faces).x)
    assert torch.equal(got["artifact"].x, tile.network_inputs(faces).x)
    assert len(got["artifact"]) == 2 * TILES.count
