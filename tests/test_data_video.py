"""Frames from videos the tests write themselves."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.data.video import frame_indices, iter_frames, video_info
from unmask.errors import BadInputError

cv2 = pytest.importorskip("cv2")


def _write(path, n=20, size=(64, 48), fourcc="mp4v"):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    for i in range(n):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[..., 2] = i * 10  # BGR: red channel encodes the index
        w.write(frame)
    w.release()
    return path


def test_frame_indices():
    assert frame_indices(100, frames=5) == [0, 25, 50, 74, 99]
    assert frame_indices(3, frames=16) == [0, 1, 2]
    assert frame_indices(10, every=4) == [0, 4, 8]
    assert frame_indices(10, frames=1) == [5]
    assert frame_indices(0) == []


def test_iter_frames_mp4_and_avi(tmp_path):
    mp4 = _write(tmp_path / "a.mp4")
    info = video_info(mp4)
    assert (info.width, info.height) == (64, 48) and info.frame_count == 20
    got = list(iter_frames(mp4, frames=4))
    assert [i for i, _ in got] == [0, 6, 13, 19]
    idx, rgb = got[-1]
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert abs(int(rgb[..., 0].mean()) - 190) < 15  # RGB order: red first
    assert [i for i, _ in iter_frames(mp4, every=7)] == [0, 7, 14]
    avi = _write(tmp_path / "b.avi", n=5, fourcc="MJPG")
    assert len(list(iter_frames(avi))) == 5


def test_bad_videos(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 2)
    with pytest.raises(BadInputError) as ei:
        list(iter_frames(bad))
    assert ei.value.reason == "video_unreadable"
    empty = _write(tmp_path / "none.mp4", n=0)
    with pytest.raises(BadInputError) as ei:
        list(iter_frames(empty))
    assert ei.value.reason in ("video_unreadable", "video_empty")
    with pytest.raises(BadInputError) as ei:
        list(iter_frames(tmp_path / "missing.mp4"))
    assert ei.value.reason == "missing"
    big = _write(tmp_path / "c.mp4", n=2)
    with pytest.raises(BadInputError) as ei:
        list(iter_frames(big, max_pixels=100))
    assert ei.value.reason == "too_large"


def test_tile_rows_of_a_video_decode_their_own_frame(tmp_path):
    """A manifest row from a video (original = the video, frame = k) gets its tiles cut from
    frame k, not a failed image decode (tile models in eval and bench)."""
    import pandas as pd

    from unmask.data.extract import face_from_row
    from unmask.data.tiles import TileSpec, cut_tiles
    from unmask.data.video import read_frame

    video = _write(tmp_path / "v.mp4", n=12, size=(96, 80))
    spec = TileSpec(size=32, count=2)
    df = pd.DataFrame(
        {
            "path": ["a.png", "b.png"],
            "abs_path": [str(tmp_path / "a.png"), str(tmp_path / "b.png")],
            "original": [str(video), str(video)],
            "frame": [3, 7],
            **{
                c: [v, v]
                for c, v in zip(
                    ("box_x0", "box_y0", "box_x1", "box_y1"), (8, 8, 72, 72), strict=True
                )
            },
        }
    )
    blank = np.zeros((64, 64, 3), np.uint8)
    faces = [face_from_row(r, [spec], crop=blank) for r in df.to_dict("records")]
    assert [f.image_size for f in faces] == [tuple(read_frame(video, 3).shape[1::-1])] * 2
    assert [f.frame for f in faces] == [3, 7]
    for k, f in zip((3, 7), faces, strict=True):
        np.testing.assert_array_equal(
            f.tiles[spec], cut_tiles(read_frame(video, k), (8, 8, 72, 72), spec)
        )
    assert not np.array_equal(faces[0].tiles[spec], faces[1].tiles[spec])
