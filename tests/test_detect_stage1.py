"""Stage 1 of `unmask detect` (decode + faces + crop): threads give the same faces as one
loop, face mesh runs only for models that read landmarks, stderr is left alone."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmask.data.spec import PreprocessSpec
from unmask.inference.detect import detect_paths
from unmask.inference.predictor import CropPredictor, InputNeeds

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


class Recorder(CropPredictor):
    """A stand-in model: P(fake) = mean crop brightness; records the landmarks it gets."""

    classes = ("real", "fake")
    threshold = 0.5
    meta: dict = {}

    def __init__(self, landmarks: bool) -> None:
        self.spec = PreprocessSpec(crop_size=64)
        self.needs = InputNeeds(landmarks=landmarks)
        self.seen: list = []

    def predict_proba(self, crops, landmarks=None):
        self.seen += list(landmarks or [None] * len(crops))
        p = np.array([c.mean() / 255.0 for c in crops])
        return np.stack([1 - p, p], axis=1)

    def embed(self, crops, landmarks=None):  # pragma: no cover - not used
        return np.zeros((len(crops), 1))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("stage1")
    face = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    for i in range(5):  # shifted copies: five different images with one face each
        Image.fromarray(np.roll(face, 7 * i, axis=1)).save(d / f"f{i}.png")
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(d / "two.png")
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(d / "blank.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


def faces_of(results):
    return [
        (Path(r.file).name, r.status, r.reason, [(f.box, f.det_score, f.p_fake) for f in r.faces])
        for r in results
    ]


def test_threads_find_the_same_faces_in_the_same_order(folder):
    one = faces_of(detect_paths([folder], Recorder(False), workers=1, batch_size=4))
    two = faces_of(detect_paths([folder], Recorder(False), workers=2, batch_size=4))
    three = faces_of(detect_paths([folder], Recorder(False), workers=3, batch_size=4))
    assert one == two == three
    names = [x[0] for x in one]
    assert names == sorted(names)  # input order, whatever thread finished first
    by_name = {x[0]: x for x in one}
    assert len(by_name["two.png"][3]) == 2 and len(by_name["f0.png"][3]) == 1
    assert by_name["blank.png"][3] == [] and by_name["broken.jpg"][1] == "error"


def test_face_mesh_only_for_models_that_read_landmarks(folder):
    plain, mesh = Recorder(False), Recorder(True)
    a = faces_of(detect_paths([folder], plain, workers=2))
    b = faces_of(detect_paths([folder], mesh, workers=2))
    assert a == b  # landmarks change no box, score or crop
    assert len(plain.seen) == len(mesh.seen) == 7
    assert all(lm is None for lm in plain.seen)
    assert all(lm is not None and lm.shape == (468, 3) for lm in mesh.seen)


def test_stderr_is_not_redirected_while_faces_are_found(folder):
    """MediaPipe's start-up lines are silenced by pointing fd 2 at /dev/null; that must
    happen only while graphs start, never while results (and progress lines) flow."""
    from unmask.data import faces

    before = os.fstat(2)
    for _ in detect_paths([folder], Recorder(False), workers=2, batch_size=1):
        now = os.fstat(2)
        assert (now.st_dev, now.st_ino) == (before.st_dev, before.st_ino)
        assert faces._silence_depth == 0


def test_early_stop_releases_the_workers(folder):
    it = detect_paths([folder], Recorder(False), workers=2, batch_size=1)
    first = next(it)
    assert first.status == "ok"
    it.close()  # the consumer stops: pending work finishes, graphs are closed, no hang


def test_loading_a_cnn_model_does_not_import_scikit_learn():
    """scikit-learn (+ SciPy, pandas) is a quarter of `unmask detect`'s start-up with the
    shipped CNN: the registry imports the classical detectors only when asked for one."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from unmask.inference.loader import load_predictor\n"
        "from unmask.inference.saved_model import default_model_dir\n"
        "load_predictor(default_model_dir())\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))\n"
        "from unmask.detectors.registry import detector_info, list_detectors\n"
        "assert detector_info('dct-ridge').family == 'classical'\n"
        "assert {'timm', 'dct-ridge'} <= set(list_detectors())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[0] == "[]"
