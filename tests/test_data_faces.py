"""Crop geometry (pure) and face detection on a real face from the shared data."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.data.faces import (
    FaceCrop,
    FaceCropper,
    crop_aligned,
    crop_square,
    eye_angle,
    square_box,
    whole_box,
)
from unmask.data.spec import PreprocessSpec


def test_square_box_centre_and_side():
    assert square_box((10, 20, 30, 60), 1.0) == (0, 20, 40, 60)  # side = max(20, 40)
    x0, y0, x1, y1 = square_box((10, 20, 30, 60), 1.5)
    assert x1 - x0 == y1 - y0 == 60
    assert (x0 + x1) / 2 == 20 and (y0 + y1) / 2 == 40
    with pytest.raises(ValueError):
        square_box((5, 5, 5, 9), 1.3)


def test_whole_box():
    assert whole_box(100, 60) == (0, -20, 100, 80)
    assert whole_box(50, 50) == (0, 0, 50, 50)


def test_crop_square_inside_is_exact_slice():
    img = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    out = crop_square(img, (2, 1, 8, 7), None)
    assert np.array_equal(out, img[1:7, 2:8])


def test_crop_square_pads_outside_with_edge_or_black():
    img = np.full((4, 4, 3), 200, np.uint8)
    edge = crop_square(img, (-2, -2, 6, 6), None)
    assert edge.shape == (8, 8, 3) and (edge == 200).all()
    black = crop_square(img, (-2, -2, 6, 6), None, pad="constant")
    assert black[0, 0].tolist() == [0, 0, 0] and black[3, 3].tolist() == [200] * 3
    far = crop_square(img, (10, 10, 14, 14), 8)  # entirely outside: black, right size
    assert far.shape == (8, 8, 3) and (far == 0).all()


def test_crop_square_resizes():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = 255
    out = crop_square(img, (0, 0, 100, 100), 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert out[:, :9].max() == 0 and out[:, 11:].min() == 255
    up = crop_square(img[:10, :10], (0, 0, 10, 10), 40)
    assert up.shape == (40, 40, 3)
    gray = crop_square(np.zeros((9, 9), np.uint8), (-1, -1, 10, 10), 5)
    assert gray.shape == (5, 5)


def test_eye_angle_and_alignment():
    assert eye_angle((0, 0), (10, 0)) == 0
    assert eye_angle((0, 0), (10, 10)) == pytest.approx(45)
    # a horizontal bar rotated by -30 deg is made level again by crop_aligned(+angle)
    import cv2

    img = np.zeros((201, 201, 3), np.uint8)
    img[98:103, 40:161] = 255
    m = cv2.getRotationMatrix2D((100, 100), -30, 1.0)  # clockwise on screen
    tilted = cv2.warpAffine(img, m, (201, 201))
    ys, xs = np.nonzero(tilted[..., 0] > 128)
    slope = np.degrees(np.arctan2(*np.polyfit(xs, ys, 1)[[0]], 1))
    assert slope == pytest.approx(30, abs=2)
    level = crop_aligned(tilted, (0, 0, 201, 201), slope, 201)
    ys2, xs2 = np.nonzero(level[..., 0] > 128)
    assert np.degrees(np.arctan(np.polyfit(xs2, ys2, 1)[0])) == pytest.approx(0, abs=2)


def test_blank_image_has_no_face_unless_keep_whole():
    blank = np.full((64, 96, 3), 127, np.uint8)
    with FaceCropper(PreprocessSpec(crop_size=32), landmarks=False) as c:
        assert c.crop(blank) == []
    with FaceCropper(PreprocessSpec(crop_size=32, keep_whole=True), landmarks=False) as c:
        (crop,) = c.crop(blank)
        assert crop.score is None and crop.box == (0, -16, 96, 80)
        assert crop.image.shape == (32, 32, 3)
    with pytest.raises(ValueError):
        FaceCropper().crop(np.zeros((8, 8), np.uint8))


@pytest.fixture(scope="module")
def face_image(shared_data):
    from unmask.data.imageio import load_image

    return load_image(
        shared_data
        / "faces"
        / "generated_photos"
        / "gan"
        / sorted(p.name for p in (shared_data / "faces" / "generated_photos" / "gan").iterdir())[0]
    )


@pytest.mark.shared_data
def test_real_face_crop(face_image, shared_data):
    from unmask.data.imageio import load_image

    spec = PreprocessSpec(crop_size=128)
    with FaceCropper(spec) as cropper:
        crops = cropper.crop(face_image)
        assert len(crops) == 1
        c = crops[0]
        assert isinstance(c, FaceCrop)
        assert c.image.shape == (128, 128, 3) and c.image.dtype == np.uint8
        x0, y0, x1, y1 = c.box
        assert x1 - x0 == y1 - y0 > 100
        fx0, fy0, fx1, fy1 = c.face_box
        assert x0 <= fx0 and fx1 <= x1 and y0 <= fy0 and fy1 <= y1
        assert 0.5 <= c.score <= 1.0
        assert c.landmarks.shape == (468, 3) and c.landmarks.dtype == np.float32
        assert c.landmarks[:, :2].min() >= 0 and c.landmarks[:, :2].max() <= 1
        # reusable: a second image through the same graphs; tight 128x128 CelebA-GAN face
        small = load_image(shared_data / "faces" / "celeba_gan" / "gan" / "0.jpg")
        assert len(cropper.crop(small)) == 1


@pytest.mark.shared_data
def test_align_background_all_faces(face_image):
    two = np.concatenate([face_image, face_image[::2, ::2].repeat(2, 0).repeat(2, 1)], axis=1)
    spec = PreprocessSpec(crop_size=64, align=True, remove_background=True, faces="all")
    with FaceCropper(spec, landmarks=False) as cropper:
        crops = cropper.crop(two)
    assert len(crops) >= 1
    areas = [(c.box[2] - c.box[0]) for c in crops]
    assert areas == sorted(areas, reverse=True)
    assert abs(crops[0].angle) < 20

    def grey_fraction(img):
        return float((np.abs(img.astype(int) - 128) <= 2).all(axis=2).mean())

    with FaceCropper(PreprocessSpec(crop_size=64), landmarks=False) as plain:
        before = plain.crop(face_image)[0].image
    with FaceCropper(PreprocessSpec(crop_size=64, remove_background=True), landmarks=False) as rb:
        after = rb.crop(face_image)[0].image
    assert grey_fraction(after) > grey_fraction(before) + 0.1


def test_get_cropper_is_shared_per_spec():
    from unmask.data.faces import get_cropper

    a = get_cropper(PreprocessSpec(crop_size=32))
    assert get_cropper(PreprocessSpec(crop_size=32)) is a
    assert get_cropper(PreprocessSpec(crop_size=48)) is not a


def test_native_stderr_silenced_only_on_first_run(monkeypatch):
    """fd 2 is the whole process's: silence it when a graph starts, not on every call."""
    import contextlib

    from unmask.data import faces

    entered = []

    @contextlib.contextmanager
    def counting():
        entered.append(1)
        yield

    monkeypatch.setattr(faces, "native_stderr_silenced", counting)
    blank = np.full((64, 64, 3), 127, np.uint8)
    with FaceCropper(PreprocessSpec(crop_size=32), landmarks=True) as c:
        c.warm_up()
        built = len(entered)
        assert built >= 3  # two detector graphs + face mesh, built and run once each
        for _ in range(3):
            assert c.crop(blank) == []
            assert c.landmarks_of(blank) is None
        assert len(entered) == built


def test_landmarks_off_and_warm_up_change_no_crop():
    """`unmask detect` skips face mesh and warms graphs up; `prepare` does neither: both
    must cut the same crops from the same boxes."""
    from pathlib import Path

    from PIL import Image

    astronaut = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
    face = np.asarray(Image.open(astronaut).convert("RGB"))
    two = np.concatenate([face, face[:, ::-1]], axis=1)
    spec = PreprocessSpec(crop_size=96, faces="all")
    with FaceCropper(spec) as full, FaceCropper(spec, landmarks=False) as fast:
        fast.warm_up()
        for img in (face, two):
            a, b = full.crop(img), fast.crop(img)
            assert len(a) == len(b) >= 1
            for x, y in zip(a, b, strict=True):
                assert (x.box, x.score, x.face_box, x.detector) == (
                    y.box,
                    y.score,
                    y.face_box,
                    y.detector,
                )
                assert np.array_equal(x.image, y.image)
                assert x.landmarks is not None and y.landmarks is None
