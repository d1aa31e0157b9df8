"""The server's model work: one shared predictor, run off the event loop.

Every decode, face crop, model call and Grad-CAM runs in a small thread pool, so the event
loop keeps answering `/healthz` and queueing requests while the model is busy. Each pool
thread has its own `FaceCropper` (MediaPipe graphs are not thread-safe); calls into the
predictor itself go through one lock (Grad-CAM hooks and matplotlib figures are not
thread-safe either). A request that waits past its deadline is dropped before it starts.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import BadInputError
from unmask.inference.loader import predictor_kind
from unmask.serving.errors import ApiError, from_bad_input, from_reason

_VIDEO_SUFFIX = {b"\x1a\x45\xdf\xa3": ".mkv", b"RIFF": ".avi"}


class _Expired(Exception):
    pass


def _unname(text: str, tmp: str, name: str) -> str:
    """`text` with the server's temp file (path or name) replaced by the upload's name."""
    return (text or "").replace(tmp, name).replace(Path(tmp).name, name)


class _LockedPredictor:
    """The predictor with every model call serialised by `lock` (attributes pass through)."""

    def __init__(self, predictor, lock: threading.Lock) -> None:
        self._p = predictor
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)

    def predict_proba(self, crops, landmarks=None):
        with self._lock:
            return self._p.predict_proba(crops, landmarks)

    def predict(self, faces):
        with self._lock:
            return self._p.predict(faces)

    def embed(self, crops, landmarks=None):
        with self._lock:
            return self._p.embed(crops, landmarks)


def explain_kind(predictor) -> str | None:
    """`"gradcam"` for CNNs and for composites with a CNN member, `"spectrum"` for
    classical models, None otherwise."""
    if predictor_kind(predictor).has_members:
        return "gradcam" if cnn_members(predictor) else None
    return predictor_kind(predictor).explain


def cnn_members(predictor) -> dict[str, Any]:
    """A composite's CNN members: Grad-CAM explains each on what it scored (the resized
    crop, or its native-pixel tiles pasted back where they were in the crop)."""
    return {n: m for n, m in predictor.members.items() if predictor_kind(m).network}


def explaining_member(predictor, driver: str | None) -> tuple[str | None, Any]:
    """(name, predictor) whose Grad-CAM explains a face: the model itself, or for a
    composite the member that drove the face's score when it is a CNN, else the first CNN
    member."""
    if not predictor_kind(predictor).has_members:
        return None, predictor
    members = cnn_members(predictor)
    name = driver if driver in members else next(iter(members))
    return name, members[name]


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


class Engine:
    def __init__(
        self,
        predictor,
        *,
        max_pixels: int,
        threads: int = 1,
        max_queue: int = 64,
        video_frames: int = 8,
        max_video_frames: int = 9000,
    ) -> None:
        self.predictor = predictor
        self.max_pixels = int(max_pixels)
        self.max_queue = int(max_queue)
        self.video_frames = int(video_frames)
        self.max_video_frames = int(max_video_frames)
        self.model_lock = threading.Lock()
        self.video_lock = threading.Lock()  # detect_paths keeps a module-level cropper
        self.locked = _LockedPredictor(predictor, self.model_lock)
        self.explain = explain_kind(predictor)
        self.executor = ThreadPoolExecutor(max(1, int(threads)), thread_name_prefix="unmask-infer")
        self._local = threading.local()
        self.in_flight = 0  # touched only on the event loop
        self.served = 0

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _cropper(self):
        c = getattr(self._local, "cropper", None)
        if c is None:
            from unmask.data.faces import FaceCropper
            from unmask.inference.detect import detection_spec

            c = self._local.cropper = FaceCropper(detection_spec(self.predictor.spec))
        return c

    async def run(self, fn, *args, deadline: float):
        """`fn(*args)` in the pool; 503 when the queue is full, 504 past `deadline`
        (monotonic seconds). BadInputError becomes its 4xx."""
        if self.in_flight >= self.max_queue:
            raise ApiError(
                503, "busy", f"server busy: {self.in_flight} requests queued; retry shortly"
            )

        def job():
            if time.monotonic() > deadline:
                raise _Expired
            return fn(*args)

        self.in_flight += 1
        loop = asyncio.get_running_loop()
        try:
            remaining = deadline - time.monotonic()
            fut = loop.run_in_executor(self.executor, job)
            return await asyncio.wait_for(fut, max(remaining, 0.001))
        except (asyncio.TimeoutError, _Expired):
            raise ApiError(
                504, "timeout", "the request took longer than the server's time limit"
            ) from None
        except BadInputError as exc:
            raise from_bad_input(exc, Path(exc.path).name) from None
        except MemoryError:
            raise ApiError(413, "too_many_pixels", "out of memory while decoding") from None
        finally:
            self.in_flight -= 1
            self.served += 1

    # ------------------------------------------------------------ work (pool threads)

    def detect_image(self, data: bytes, name: str):
        from unmask.data.imageio import load_image_bytes
        from unmask.inference.detect import score_image
        from unmask.provenance import read_provenance

        image = load_image_bytes(data, name, self.max_pixels)
        res = score_image(image, self.locked, self._cropper(), name=name)
        # the uploaded bytes' Content Credentials and metadata, beside the score
        res.provenance = read_provenance(data)
        return res, {"width": int(image.shape[1]), "height": int(image.shape[0])}

    def detect_video(self, data: bytes, name: str):
        from unmask.inference.detect import detect_paths

        suffix = _VIDEO_SUFFIX.get(data[:4], ".mp4")
        fd, tmp = tempfile.mkstemp(prefix="unmask-upload-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            try:
                self._check_video_length(tmp, name)
            except BadInputError as exc:  # it names the temp file: name the upload instead
                raise BadInputError(name, exc.reason, _unname(exc.detail, tmp, name)) from None
            with self.video_lock:
                res = next(
                    iter(detect_paths([tmp], self.locked, frames=self.video_frames, workers=1))
                )
        finally:
            Path(tmp).unlink(missing_ok=True)
        res.file = name
        if res.status == "error":
            raise from_reason(res.reason, _unname(res.detail, tmp, name), name)
        return res, None

    def _check_video_length(self, path: str, name: str) -> None:
        """Refuse long videos from the container header: frames are grabbed sequentially,
        so a long one would hold a pool thread past any timeout."""
        from unmask.data.video import video_info

        info = video_info(path)
        n = getattr(info, "frame_count", None)
        if n is None and isinstance(info, dict):
            n = info.get("frame_count")
        if n and n > self.max_video_frames:
            raise ApiError(
                413,
                "video_too_long",
                f"{name}: {n} frames; the server takes videos of at most "
                f"{self.max_video_frames} frames",
            )

    def explain_face(self, data: bytes, name: str, face: int) -> tuple[bytes, Any, str | None]:
        """(PNG, the face's result, the composite member explained or None)."""
        from unmask.data.imageio import load_image_bytes
        from unmask.inference.detect import score_image

        image = load_image_bytes(data, name, self.max_pixels)
        res = score_image(image, self.locked, self._cropper(), name=name, keep_crops=True)
        if not res.faces:
            raise ApiError(422, "no_face", f"{name}: no face found to explain")
        if not 0 <= face < len(res.faces):
            raise ApiError(
                422, "no_such_face", f"{name}: face {face} does not exist (found {len(res.faces)})"
            )
        f = res.faces[face]
        with self.model_lock:
            if self.explain == "gradcam":
                from unmask.inference.explain import cams_for_faces, scored_face
                from unmask.inference.gradcam import overlay

                member, target = explaining_member(self.predictor, f.driver)
                cams = cams_for_faces(target, [scored_face(f)])
                tiles = [f.crop] + [overlay(f.crop, cams[0, c]) for c in range(cams.shape[1])]
                return png_bytes(np.concatenate(tiles, axis=1)), f, member
            from unmask.inference.explain import _spectrum_figure

            buf = io.BytesIO()
            _spectrum_figure(
                f.crop, self.predictor, buf, f"{name} face {face}: P(fake) {f.p_fake:.2f}"
            )
            return buf.getvalue(), f, None
