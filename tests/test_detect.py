"""`unmask detect` end to end with the model that ships in the package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmask.cli import main

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"

FACE_KEYS = {
    "frame",
    "face_index",
    "box",
    "det_score",
    "p_fake",
    "probs",
    "verdict",
    "track",
    "driver",
}
FILE_KEYS = {"file", "kind", "status", "verdict", "score", "faces", "reason", "detail", "video"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("detect_inputs")
    face = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    one = d / "one.jpg"
    Image.fromarray(face).save(one, quality=95)
    two = d / "two.png"  # two faces side by side (the second mirrored)
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(two)
    zero = d / "zero.png"  # a plain colour gradient: nothing face-like at all
    ramp = np.linspace(0, 255, 256, dtype=np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (256, 1))] * 3, axis=2)).save(zero)
    corrupt = d / "corrupt.jpg"
    corrupt.write_bytes(one.read_bytes()[:300])  # truncated JPEG
    video = d / "clip.mp4"
    import cv2

    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    small = cv2.resize(face[:, :, ::-1], (256, 256))
    for i in range(12):
        w.write(np.roll(small, 2 * i, axis=1))
    w.release()
    return {"one": one, "two": two, "zero": zero, "corrupt": corrupt, "video": video, "dir": d}


def run_json(capsys, *args) -> tuple[int, dict]:
    code = main(["detect", "--json", "-q", "--workers", "1", *map(str, args)])
    return code, json.loads(capsys.readouterr().out)


def test_zero_one_two_faces(inputs, capsys):
    code, doc = run_json(capsys, inputs["zero"], inputs["one"], inputs["two"])
    assert code == 0
    by_name = {Path(r["file"]).name: r for r in doc["results"]}
    assert len(by_name["zero.png"]["faces"]) == 0
    assert by_name["zero.png"]["verdict"] == "no_face"
    assert len(by_name["one.jpg"]["faces"]) == 1
    assert len(by_name["two.png"]["faces"]) == 2
    for r in doc["results"]:
        for f in r["faces"]:
            assert 0.0 <= f["p_fake"] <= 1.0
            assert f["verdict"] in ("real", "fake")
            assert abs(sum(f["probs"].values()) - 1.0) < 1e-4
    # the two faces of two.png are distinct boxes on the left and right halves
    boxes = sorted(f["box"] for f in by_name["two.png"]["faces"])
    assert boxes[0][2] <= 512 + 40 and boxes[1][0] >= 512 - 40


def test_json_schema_is_stable(inputs, capsys):
    _, doc = run_json(capsys, inputs["one"])
    assert set(doc) == {"schema", "model", "results", "summary"}
    assert doc["schema"] == 1
    assert {"id", "detector", "version", "classes", "threshold", "path"} <= set(doc["model"])
    assert set(doc["summary"]) == {"files", "ok", "errors", "fake"}
    r = doc["results"][0]
    assert set(r) == FILE_KEYS
    assert set(r["faces"][0]) == FACE_KEYS


def test_folder_with_corrupt_file_keeps_going(inputs, capsys):
    code = main(
        [
            "detect",
            "-q",
            "--workers",
            "1",
            "--csv",
            str(inputs["dir"] / "out.csv"),
            str(inputs["dir"]),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "corrupt.jpg" in err
    assert "unreadable" in out  # the table says so too
    # every input is accounted for, the unreadable one included
    import csv

    with open(inputs["dir"] / "out.csv") as fh:
        rows = list(csv.DictReader(fh))
    files = {Path(r["file"]).name for r in rows}
    assert {"zero.png", "one.jpg", "two.png", "corrupt.jpg", "clip.mp4"} <= files


def test_video_tracks_and_verdict(inputs, capsys, tmp_path):
    code, doc = run_json(capsys, inputs["video"], "--frames", "4", "--timeline", tmp_path)
    assert code == 0
    r = doc["results"][0]
    assert r["kind"] == "video" and r["status"] == "ok"
    assert len(r["faces"]) == 4
    assert {f["track"] for f in r["faces"]} == {0}  # one face followed through the clip
    tracks = r["video"]["tracks"]
    assert len(tracks) == 1 and tracks[0]["frames"] == 4
    assert abs(r["score"] - np.mean([f["p_fake"] for f in r["faces"]])) < 1e-5
    assert "rule" in r["video"]
    assert list(tmp_path.glob("*-timeline.png"))


def test_annotate_and_missing_path(inputs, capsys, tmp_path):
    code = main(
        [
            "detect",
            "-q",
            "--workers",
            "1",
            "--annotate",
            str(tmp_path),
            str(inputs["one"]),
            str(tmp_path / "nope.jpg"),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0
    assert "nope.jpg: missing" in err
    pngs = list(tmp_path.glob("*-annotated.png"))
    assert len(pngs) == 1
    assert Image.open(pngs[0]).size == Image.open(inputs["one"]).size


def test_only_bad_inputs_exit_non_zero(tmp_path, capsys):
    assert main(["detect", "-q", str(tmp_path / "missing.jpg")]) == 1
    capsys.readouterr()


def test_bad_model_folder_is_one_line(tmp_path, capsys):
    assert main(["detect", "--model", str(tmp_path), str(ASTRONAUT)]) == 2
    err = capsys.readouterr().err
    assert "not an unmask model folder" in err and len(err.strip().splitlines()) == 1


def test_explain_writes_heatmaps(inputs, tmp_path, capsys):
    """The shipped model is a composite: one Grad-CAM per member, in DIR/<member>/ (as
    `unmask explain` writes them), not a spectrum plot without class profiles."""
    from unmask.inference.predictor import load_predictor
    from unmask.modelfile import default_model_dir

    code = main(["detect", "-q", "--workers", "1", "--explain", str(tmp_path), str(inputs["one"])])
    capsys.readouterr()
    assert code == 0
    members = sorted(load_predictor(default_model_dir()).members)
    pngs = sorted(tmp_path.rglob("*.png"))
    assert [p.parent.name for p in pngs] == members
    for p in pngs:
        assert "gradcam" in p.name
        assert np.asarray(Image.open(p)).std() > 5


def test_one_file_under_several_spellings_is_scored_once(inputs, capsys, tmp_path, monkeypatch):
    """a.jpg ./a.jpg /abs/a.jpg dir//a.jpg link.jpg: one scored, four `duplicate`s (issue 24)."""
    import shutil

    d = tmp_path / "dup"
    d.mkdir()
    shutil.copy(inputs["dir"] / "one.jpg", d / "a.jpg")
    (d / "link.jpg").symlink_to(d / "a.jpg")
    (d / "loop.jpg").symlink_to(d / "loop.jpg")
    monkeypatch.chdir(d)
    code, doc = run_json(
        capsys, "a.jpg", "./a.jpg", d / "a.jpg", f"{d}//a.jpg", "link.jpg", "loop.jpg"
    )
    res = doc["results"]
    assert len(res) == 6
    assert res[0]["status"] == "ok" and res[0]["faces"]
    assert [r["reason"] for r in res[1:5]] == ["duplicate"] * 4
    assert all(not r["faces"] for r in res[1:])
    assert res[5]["reason"] == "unreadable"  # a symlink loop, as prepare says it
