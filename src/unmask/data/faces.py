"""Find faces and cut them into square crops, as a `PreprocessSpec` says.

Detection is MediaPipe face detection, tried in a cascade because the full-range model
misses some tightly cropped faces (128x128 CelebA-GAN, 600x600 Yonsei):

    1. full-range model (model_selection=1) on the image
    2. full-range model on the image with a black border of 25% of its side on every side
    3. short-range model (model_selection=0) on the image
    4. short-range model on the bordered image

The first pass that finds a face with score >= `spec.min_score` wins (`FaceCrop.detector`
says which). The crop is the square of side `margin * max(face w, face h)` centred on the
face box; where it leaves the image it is filled by repeating the edge pixels (no black
bars: a hard black edge would be a frequency artefact correlated with tightly cropped
sources). It is resized to `crop_size` (area interpolation when shrinking, cubic when
enlarging). Optional: rotation so the eyes are level (`align`), background replaced by mid
grey with MediaPipe selfie segmentation (`remove_background`). The 468 face-mesh landmarks
of the final crop (x, y in [0, 1] of the crop, z MediaPipe's relative depth on the x scale)
are kept when face mesh finds the face.

MediaPipe graphs are created on first use and reused: make one `FaceCropper` per process
or thread, or call `get_cropper(spec)`, which keeps one per spec for the life of the process
(for `detect`/`serve`). `crop()` holds a lock, so one cropper may be shared by threads.
MediaPipe releases the GIL while a graph runs, so croppers in several threads of one process
run in parallel (`unmask detect` does this). Landmarks are the costliest optional step: pass
`landmarks=False` when nothing downstream reads them (the face boxes and crops are the same).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from unmask.data.spec import PreprocessSpec

Box = tuple[int, int, int, int]

DETECTOR_PASSES: tuple[tuple[str, int, float], ...] = (
    ("full", 1, 0.0),
    ("full_pad", 1, 0.25),
    ("short", 0, 0.0),
    ("short_pad", 0, 0.25),
)
GREY = 128


@dataclass
class FaceCrop:
    image: np.ndarray  # (crop_size, crop_size, 3) uint8 RGB
    box: Box  # square crop box (x0, y0, x1, y1) in the original image's pixels
    score: float | None  # detector confidence; None when the image was kept whole
    landmarks: np.ndarray | None  # (468, 3) float32, x/y in [0, 1] of the crop; None if none
    face_box: tuple[float, float, float, float] | None  # detector box (x0, y0, x1, y1) px
    detector: str = ""  # which detection pass found it ("full", "full_pad", ...; "" if whole)
    angle: float = 0.0  # rotation applied by `align`, degrees
    keypoints: list[tuple[float, float]] = field(default_factory=list)  # 6 detector points, px


# ---------------------------------------------------------------- pure geometry


def square_box(face_box: tuple[float, float, float, float], margin: float = 1.3) -> Box:
    """Square (x0, y0, x1, y1), side `round(margin * max(w, h))`, centred on `face_box`.
    Integer pixel coordinates; it may extend past the image (see `crop_square`)."""
    x0, y0, x1, y1 = (float(v) for v in face_box)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        raise ValueError(f"empty face box {face_box}")
    side = max(int(round(margin * max(w, h))), 1)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    bx0 = int(math.floor(cx - side / 2.0 + 0.5))
    by0 = int(math.floor(cy - side / 2.0 + 0.5))
    return bx0, by0, bx0 + side, by0 + side


def whole_box(width: int, height: int) -> Box:
    """Square box of side max(w, h) centred on the whole image (for `keep_whole`)."""
    side = max(width, height)
    x0 = (width - side) // 2
    y0 = (height - side) // 2
    return x0, y0, x0 + side, y0 + side


def crop_square(image: np.ndarray, box: Box, size: int | None, pad: str = "edge") -> np.ndarray:
    """Cut `box` out of `image` (H, W[, C]); parts outside the image are filled by repeating
    the edge (`pad="edge"`) or with black (`pad="constant"`). Resized to size x size (area
    interpolation when shrinking, cubic when enlarging); `size=None` keeps the box's size."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty crop box {box}")
    h, w = image.shape[:2]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ix1 <= ix0 or iy1 <= iy0:  # box entirely outside the image
        out = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], dtype=image.dtype)
    else:
        inner = image[iy0:iy1, ix0:ix1]
        pads = (iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1)
        if any(pads):
            border = cv2.BORDER_REPLICATE if pad == "edge" else cv2.BORDER_CONSTANT
            out = cv2.copyMakeBorder(np.ascontiguousarray(inner), *pads, border, value=0)
            if image.ndim == 3 and out.ndim == 2:  # single-channel 3-D input
                out = out[..., None]
        else:
            out = inner
    if size is None or (out.shape[0] == size and out.shape[1] == size):
        return np.ascontiguousarray(out)
    interp = cv2.INTER_AREA if out.shape[0] > size else cv2.INTER_CUBIC
    res = cv2.resize(np.ascontiguousarray(out), (size, size), interpolation=interp)
    if image.ndim == 3 and res.ndim == 2:
        res = res[..., None]
    return res


def eye_angle(right_eye: tuple[float, float], left_eye: tuple[float, float]) -> float:
    """Angle (degrees) of the line from the subject's right eye (image left) to the left eye;
    rotating the image by this angle (counter-clockwise positive, OpenCV convention) makes
    the eyes level."""
    dx = left_eye[0] - right_eye[0]
    dy = left_eye[1] - right_eye[1]
    return math.degrees(math.atan2(dy, dx))


def crop_aligned(image: np.ndarray, box: Box, angle: float, size: int) -> np.ndarray:
    """Crop `box` after rotating the image by `angle` degrees about the box centre."""
    import cv2

    x0, y0, x1, y1 = box
    side = x1 - x0
    big = int(math.ceil(side * math.sqrt(2))) + 2
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    bx0 = int(round(cx - big / 2.0))
    by0 = int(round(cy - big / 2.0))
    patch = crop_square(image, (bx0, by0, bx0 + big, by0 + big), None)
    pcx, pcy = cx - bx0, cy - by0
    m = cv2.getRotationMatrix2D((pcx, pcy), angle, 1.0)
    rot = cv2.warpAffine(
        patch, m, (big, big), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    ox, oy = int(round(pcx - side / 2.0)), int(round(pcy - side / 2.0))
    return crop_square(rot, (ox, oy, ox + side, oy + side), size)


# ---------------------------------------------------------------- MediaPipe


def _quiet_mediapipe() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype.*")


_SILENCE_LOCK = threading.Lock()
_silence_depth = 0
_saved_stderr_fd: int | None = None


@contextlib.contextmanager
def native_stderr_silenced():
    """MediaPipe/TFLite print INFO/WARNING lines from C++ straight to file descriptor 2
    when graphs are built and first run; Python-level settings cannot stop them. Point fd 2
    at /dev/null around those calls (reference-counted, so threads nest safely). This
    silences the whole process, so it wraps only building a graph and its first run, never
    every call: other threads (a progress bar, error lines) keep their stderr.
    UNMASK_DEBUG=1 keeps them."""
    global _silence_depth, _saved_stderr_fd
    if os.environ.get("UNMASK_DEBUG"):
        yield
        return
    with _SILENCE_LOCK:
        if _silence_depth == 0:
            try:
                import sys

                sys.stderr.flush()
                _saved_stderr_fd = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            except OSError:
                _saved_stderr_fd = None
        _silence_depth += 1
    try:
        yield
    finally:
        with _SILENCE_LOCK:
            _silence_depth -= 1
            if _silence_depth == 0 and _saved_stderr_fd is not None:
                os.dup2(_saved_stderr_fd, 2)
                os.close(_saved_stderr_fd)
                _saved_stderr_fd = None


class FaceCropper:
    """`FaceCropper(spec).crop(rgb) -> list[FaceCrop]`, largest face first.

    Creates its MediaPipe graphs lazily and keeps them; call `close()` (or use it as a
    context manager) to free them. Not thread-safe: one per thread/process."""

    def __init__(self, spec: PreprocessSpec | None = None, landmarks: bool = True) -> None:
        self.spec = spec or PreprocessSpec()
        self.want_landmarks = landmarks
        self._detectors: dict[int, object] = {}
        self._mesh = None
        self._segmenter = None
        self._ran: set[int] = set()  # id() of graphs that have run once (logs printed)
        self._lock = threading.RLock()

    # -- lifecycle
    def __enter__(self) -> FaceCropper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for obj in [*self._detectors.values(), self._mesh, self._segmenter]:
            if obj is not None:
                with contextlib.suppress(Exception):  # already closed
                    obj.close()
        self._detectors = {}
        self._mesh = None
        self._segmenter = None
        self._ran = set()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:  # noqa: SIM105 - at interpreter exit `contextlib` may already be None
            self.close()
        except Exception:
            pass

    def _detector(self, model_selection: int):
        det = self._detectors.get(model_selection)
        if det is None:
            _quiet_mediapipe()
            import mediapipe as mp

            with native_stderr_silenced():
                det = mp.solutions.face_detection.FaceDetection(
                    model_selection=model_selection,
                    min_detection_confidence=float(self.spec.min_score),
                )
            self._detectors[model_selection] = det
        return det

    def _face_mesh(self):
        if self._mesh is None:
            _quiet_mediapipe()
            import mediapipe as mp

            with native_stderr_silenced():
                self._mesh = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True,
                    max_num_faces=1,
                    refine_landmarks=False,
                    min_detection_confidence=0.5,
                )
        return self._mesh

    def _selfie(self):
        if self._segmenter is None:
            _quiet_mediapipe()
            import mediapipe as mp

            with native_stderr_silenced():
                self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(
                    model_selection=0
                )
        return self._segmenter

    def _process(self, graph, image: np.ndarray):
        """`graph.process(image)`, with native stderr silenced on the graph's first run only
        (later runs print nothing)."""
        if id(graph) in self._ran:
            return graph.process(image)
        with native_stderr_silenced():
            result = graph.process(image)
        self._ran.add(id(graph))
        return result

    def warm_up(self) -> FaceCropper:
        """Build every graph this cropper can use and run each once on a blank image, so
        that MediaPipe's start-up lines are printed (silenced) now and not in the middle of
        a run. Optional: graphs are built on first use anyway. Returns self."""
        blank = np.zeros((64, 64, 3), dtype=np.uint8)
        with self._lock:
            graphs = [self._detector(m) for m in sorted({m for _, m, _ in DETECTOR_PASSES})]
            if self.want_landmarks:
                graphs.append(self._face_mesh())
            if self.spec.remove_background:
                graphs.append(self._selfie())
            for g in graphs:
                self._process(g, blank)
        return self

    # -- detection
    def detect(self, image: np.ndarray) -> tuple[list[dict], str]:
        """Raw detections `{"box": (x0,y0,x1,y1) px, "score", "keypoints": [(x,y) px]}`
        of the first cascade pass that finds any, largest first; and the pass name."""
        with self._lock:
            return self._detect(image)

    def _detect(self, image: np.ndarray) -> tuple[list[dict], str]:
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        for name, model, frac in DETECTOR_PASSES:
            if frac:
                p = int(round(max(h, w) * frac))
                src = np.pad(image, ((p, p), (p, p), (0, 0)), mode="constant")
            else:
                p, src = 0, image
            sh, sw = src.shape[:2]
            result = self._process(self._detector(model), src)
            found = []
            for det in result.detections or []:
                score = float(det.score[0]) if det.score else 0.0
                if score < self.spec.min_score:
                    continue
                rb = det.location_data.relative_bounding_box
                x0 = rb.xmin * sw - p
                y0 = rb.ymin * sh - p
                x1 = x0 + rb.width * sw
                y1 = y0 + rb.height * sh
                # clip the raw box to the image (the crop box may still extend past it)
                x0, x1 = max(x0, 0.0), min(x1, float(w))
                y0, y1 = max(y0, 0.0), min(y1, float(h))
                if x1 - x0 < 2 or y1 - y0 < 2:
                    continue
                kps = [(k.x * sw - p, k.y * sh - p) for k in det.location_data.relative_keypoints]
                found.append({"box": (x0, y0, x1, y1), "score": score, "keypoints": kps})
            if found:
                found.sort(key=lambda d: -(d["box"][2] - d["box"][0]) * (d["box"][3] - d["box"][1]))
                return found, name
        return [], ""

    def landmarks_of(self, crop: np.ndarray) -> np.ndarray | None:
        """(468, 3) float32 face-mesh landmarks of a crop (x, y in [0, 1]) or None."""
        with self._lock:
            result = self._process(self._face_mesh(), np.ascontiguousarray(crop))
        faces = result.multi_face_landmarks
        if not faces:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in faces[0].landmark[:468]], dtype=np.float32)
        if pts.shape != (468, 3):
            return None
        pts[:, :2] = np.clip(pts[:, :2], 0.0, 1.0)
        return pts

    def remove_background(self, crop: np.ndarray) -> np.ndarray:
        """Background -> mid grey (soft mask from selfie segmentation)."""
        with self._lock:
            result = self._process(self._selfie(), np.ascontiguousarray(crop))
        mask = result.segmentation_mask
        if mask is None:
            return crop
        m = np.clip(mask.astype(np.float32), 0.0, 1.0)[..., None]
        out = crop.astype(np.float32) * m + GREY * (1.0 - m)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    # -- the whole thing
    def crop(self, image: np.ndarray) -> list[FaceCrop]:
        """Face crops of an RGB uint8 image, largest first (just one with faces="largest").
        `[]` when no face is found, unless `spec.keep_whole` (then one whole-image crop)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("crop() expects an (H, W, 3) uint8 RGB array")
        with self._lock:
            return self._crop(image)

    def _crop(self, image: np.ndarray) -> list[FaceCrop]:
        spec = self.spec
        dets, pass_name = self.detect(image)
        if spec.faces == "largest":
            dets = dets[:1]
        crops: list[FaceCrop] = []
        for det in dets:
            box = square_box(det["box"], spec.margin)
            angle = 0.0
            if spec.align and len(det["keypoints"]) >= 2:
                angle = eye_angle(det["keypoints"][0], det["keypoints"][1])
                img = crop_aligned(image, box, angle, spec.crop_size)
            else:
                img = crop_square(image, box, spec.crop_size)
            crops.append(
                FaceCrop(
                    image=img,
                    box=box,
                    score=det["score"],
                    landmarks=None,
                    face_box=tuple(float(v) for v in det["box"]),
                    detector=pass_name,
                    angle=angle,
                    keypoints=[(float(x), float(y)) for x, y in det["keypoints"]],
                )
            )
        if not crops and spec.keep_whole:
            h, w = image.shape[:2]
            box = whole_box(w, h)
            crops.append(
                FaceCrop(
                    image=crop_square(image, box, spec.crop_size),
                    box=box,
                    score=None,
                    landmarks=None,
                    face_box=None,
                )
            )
        for c in crops:
            if self.want_landmarks:
                c.landmarks = self.landmarks_of(c.image)
            if spec.remove_background:
                c.image = self.remove_background(c.image)
        return crops


_SHARED: dict[PreprocessSpec, FaceCropper] = {}
_SHARED_LOCK = threading.Lock()


def get_cropper(spec: PreprocessSpec | None = None) -> FaceCropper:
    """The process-wide `FaceCropper` for `spec` (created on first call, never closed)."""
    spec = spec or PreprocessSpec()
    with _SHARED_LOCK:
        cropper = _SHARED.get(spec)
        if cropper is None:
            cropper = _SHARED[spec] = FaceCropper(spec)
        return cropper
