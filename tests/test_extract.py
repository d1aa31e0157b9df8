"""Stage 1 in one module (`unmask.data.extract`): prepare and detect reject a bad file for
the same reason, and a prepared manifest row gives back the Face found in its file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmask.data.spec import PreprocessSpec
from unmask.data.tiles import TileSpec

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
SPEC = PreprocessSpec(crop_size=64)
TILES = TileSpec(size=32, count=2)


def _bad_files(folder: Path) -> dict[str, tuple[str, str]]:
    """Hand-made bad inputs -> the (reason, detail) both paths must give."""
    folder.mkdir(parents=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(ASTRONAUT.read_bytes()[:3000])
    (folder / "notes.jpg").write_text("not an image at all\n")
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    return {
        "empty.jpg": ("empty", "zero bytes"),
        "truncated.jpg": ("truncated", ""),  # detail: Pillow's words
        "notes.jpg": ("not_an_image", "not an image or video format unmask reads"),
        "dangling.jpg": ("missing", "broken symbolic link"),
    }


class _Brightness:
    """A stand-in model (no weights): P(fake) = mean crop brightness."""

    classes = ("real", "fake")
    threshold = 0.5
    meta: dict = {}
    spec = SPEC

    def __init__(self) -> None:
        from unmask.inference.predictor import InputNeeds

        self.needs = InputNeeds()

    def predict(self, faces):
        from unmask.inference.predictor import Scores

        p = np.array([f.crop.mean() / 255.0 for f in faces], dtype=np.float64)
        return Scores(np.stack([1 - p, p], axis=1), [None] * len(faces))


def test_prepare_and_detect_give_the_same_reasons(tmp_path):
    from unmask.data.extract import extract_file
    from unmask.data.faces import FaceCropper
    from unmask.data.prepare import prepare
    from unmask.inference.detect import detect_paths

    expected = _bad_files(tmp_path / "in" / "real")
    files = sorted((tmp_path / "in" / "real").iterdir())

    res = prepare(tmp_path / "in", tmp_path / "out", SPEC, workers=1, progress=False)
    with open(res.rejected_path, newline="", encoding="utf-8") as fh:
        by_prepare = {Path(r["file"]).name: (r["reason"], r["detail"]) for r in csv.DictReader(fh)}
    by_detect = {
        Path(r.file).name: (r.reason, r.detail)
        for r in detect_paths(files, _Brightness(), workers=1)
    }
    with FaceCropper(SPEC, landmarks=False) as cropper:
        extracted = [extract_file(f, cropper) for f in files]
    by_extract = {Path(ex.file).name: (ex.reason, ex.detail) for ex in extracted}
    assert by_prepare == by_detect == by_extract
    assert {k: v[0] for k, v in by_detect.items()} == {k: v[0] for k, v in expected.items()}
    for name, (_, detail) in expected.items():
        assert not detail or by_detect[name][1] == detail, name


def test_extract_file_never_raises_on_a_decoder_failure(tmp_path, monkeypatch):
    """Any exception from a decoder becomes reason `error` (class: message); a MemoryError
    becomes `too_large`: one odd file never stops a batch."""
    import unmask.data.imageio as imageio
    from unmask.data.extract import extract_file
    from unmask.data.faces import FaceCropper

    with FaceCropper(SPEC, landmarks=False) as cropper:

        def boom(*_a, **_k):
            raise RuntimeError("decoder fell over")

        monkeypatch.setattr(imageio, "load_image_with_format", boom)
        ex = extract_file(ASTRONAUT, cropper)
        assert (ex.reason, ex.detail, ex.faces) == ("error", "RuntimeError: decoder fell over", [])

        def oom(*_a, **_k):
            raise MemoryError

        monkeypatch.setattr(imageio, "load_image_with_format", oom)
        assert extract_file(ASTRONAUT, cropper).reason == "too_large"


def test_face_from_a_manifest_row_is_the_face_from_its_file(tmp_path):
    from unmask.data.extract import extract_file, face_from_row
    from unmask.data.faces import FaceCropper
    from unmask.data.manifest import read_manifest
    from unmask.data.prepare import prepare

    (tmp_path / "in" / "real").mkdir(parents=True)
    photo = tmp_path / "in" / "real" / "astronaut.png"
    Image.open(ASTRONAUT).convert("RGB").save(photo)
    prepare(tmp_path / "in", tmp_path / "out", SPEC, workers=1, progress=False)
    (row,) = read_manifest(tmp_path / "out").to_dict("records")

    from_row = face_from_row(row, [TILES])
    with FaceCropper(SPEC) as cropper:
        ex = extract_file(photo, cropper, tiles=[TILES])
    (from_file,) = ex.faces
    assert ex.kind == "image" and ex.frames == [-1] and ex.image_format == "PNG"
    np.testing.assert_array_equal(from_row.crop, from_file.crop)
    np.testing.assert_array_equal(from_row.landmarks, from_file.landmarks)
    np.testing.assert_array_equal(from_row.tiles[TILES], from_file.tiles[TILES])
    for attr in ("box", "image_size", "frame", "face_index", "detector", "box_side"):
        assert getattr(from_row, attr) == getattr(from_file, attr), attr
    assert from_row.det_score == pytest.approx(from_file.det_score, abs=1e-4)
    assert Path(from_row.source).resolve() == Path(from_file.source).resolve()
