"""Frames from videos (mp4, avi, mov, mkv, webm: whatever OpenCV's FFmpeg reads).

Frames are read sequentially (`grab` every frame, decode only the kept ones): seeking in
H.264 is inexact, and sequential grabbing is cheap next to face detection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unmask.errors import BadInputError


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # as the container reports it (may be 0 when unknown)
    width: int
    height: int


def _open(path: str | Path):
    import cv2

    from unmask.data.imageio import open_regular

    p = Path(path)
    with open_regular(p):  # missing, FIFO/device (FFmpeg would block on it), empty, unreadable
        pass
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise BadInputError(p, "video_unreadable", "OpenCV/FFmpeg cannot open it")
    return cap


def video_info(path: str | Path) -> VideoInfo:
    """fps, frame count and frame size from the container header."""
    import cv2

    cap = _open(path)
    try:
        return VideoInfo(
            fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
    finally:
        cap.release()


def frame_indices(n_frames: int, every: int = 0, frames: int = 16) -> list[int]:
    """Which frames to keep: every `every`-th (when > 0), else `frames` evenly spaced
    (first and last included)."""
    if n_frames <= 0:
        return []
    if every and every > 0:
        return list(range(0, n_frames, every))
    k = max(int(frames), 1)
    if k >= n_frames:
        return list(range(n_frames))
    if k == 1:
        return [n_frames // 2]
    return sorted({int(round(i)) for i in np.linspace(0, n_frames - 1, k)})


def _count_frames(path: str | Path) -> int:
    cap = _open(path)
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def iter_frames(
    path: str | Path, every: int = 0, frames: int = 16, max_pixels: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield `(frame_index, RGB uint8 frame)`: every `every`-th frame when every > 0, else
    `frames` evenly spaced frames. Raises `BadInputError` (`video_unreadable`,
    `video_empty`, `too_large`) before yielding anything when the video is unusable."""
    import cv2

    if every < 0 or frames < 1:
        raise ValueError("every must be >= 0 and frames >= 1")
    info = video_info(path)
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise BadInputError(
            path, "too_large", f"{info.width}x{info.height} frames > max_pixels {max_pixels}"
        )
    n = info.frame_count
    if n <= 0 and not every:  # container does not say: count by grabbing
        n = _count_frames(path)
    if n <= 0 and not every:
        raise BadInputError(path, "video_empty", "no frames")
    wanted = set(frame_indices(n, every, frames)) if not every else None
    last = max(wanted) if wanted else None
    cap = _open(path)
    yielded = 0
    try:
        idx = 0
        while True:
            if last is not None and idx > last:
                break
            if not cap.grab():
                break
            keep = (idx % every == 0) if every else (idx in wanted)
            if keep:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None and bgr.size:
                    if bgr.ndim == 2:
                        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                    yielded += 1
                    yield idx, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            idx += 1
    finally:
        cap.release()
    if yielded == 0:
        raise BadInputError(path, "video_empty", "no decodable frames")


def read_frame(path: str | Path, index: int) -> np.ndarray:
    """One frame (RGB) by index, e.g. to annotate the frame a detection came from."""
    for idx, frame in iter_frames(path, every=1):
        if idx == index:
            return frame
        if idx > index:
            break
    raise BadInputError(path, "video_empty", f"no frame {index}")
