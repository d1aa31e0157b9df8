"""Stage 1 in one place: an input -> its faces, as one typed record (`Face`).

A `Face` is what every path scores: local `detect`, the Ray engine, `serve`, `eval`,
`prepare` and tile training all make it here and hand it to a predictor unchanged. It
carries the square RGB crop (PreprocessSpec.crop_size), the face-mesh landmarks when the
model reads them, the native-pixel tiles of every TileSpec the model asked for (cut from
the decoded original in the crop box, so the original never travels), and where the face
came from (file, frame, box, image size).

    init_worker(spec, landmarks)                  # once per process (pool, Ray actor)
    ex = extract_file(path, every=0, frames=16, tiles=specs)    # -> Extraction
    ex.faces, ex.reason                           # [Face, ...]; "" or why none were read
    face = face_from_row(row, tiles=specs)        # a prepared manifest row -> its Face
    faces = faces_in_image(image, cropper, specs) # an image already decoded (uploads)

The error rule, the same for `prepare` (rejected.csv) and `detect` (the JSON `reason`):
`extract_file` never raises for a bad input; its `Extraction.reason` says why it gave no
faces:

    missing, unreadable, not_a_regular_file, empty, bad_file_name   the file itself
                       (`imageio.file_problem`: a dangling symlink is `missing`, a symlink
                       loop `unreadable`)
    not_an_image       neither an image nor a video format unmask reads
    corrupt, truncated, too_large, video_unreadable, video_empty    the decoders'
                       `BadInputError`s (too_large: over the spec's `max_pixels`, for a
                       still image and a video's frames alike)
    too_large          a MemoryError while decoding or cropping
    error              any other exception from a decoder or the face detector (detail:
                       its class and message): one odd file never stops a batch

A video frame without a face is no error: it is simply absent from `faces` (its index is
in `frames`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unmask.data.spec import PreprocessSpec
from unmask.data.tiles import TileSpec
from unmask.errors import BadInputError

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Face:
    crop: np.ndarray  # (S, S, 3) uint8 RGB, S = PreprocessSpec.crop_size
    landmarks: np.ndarray | None = None  # (468, 2|3), x/y in [0, 1] of the crop; None if none
    tiles: Mapping[TileSpec, np.ndarray] = field(default_factory=dict)  # spec -> (T, t, t, 3)
    box: Box | None = None  # square crop box (x0, y0, x1, y1) in the original's pixels
    image_size: tuple[int, int] | None = None  # (w, h) of the image the box and tiles are in
    frame: int = -1  # video frame index; -1 for a still image
    face_index: int = 0  # order within its image or frame, largest first
    det_score: float | None = None  # detector confidence; None when the image was kept whole
    source: str = ""  # the file it came from
    detector: str = ""  # the detection pass that found it ("full", ...); "" if kept whole

    @property
    def box_side(self) -> float | None:
        """The square crop box's side in the original's pixels (composites calibrate a
        member per face size with it); None when unknown."""
        return None if self.box is None else float(self.box[2] - self.box[0])


@dataclass
class Extraction:
    """One input file after stage 1: its faces, or the reason it gave none."""

    file: str
    kind: str = "unknown"  # "image" | "video" | "unknown" (not read as either)
    faces: list[Face] = field(default_factory=list)  # empty when `on_face` took them
    reason: str = ""  # "" when the file was read; else the error tag (module docstring)
    detail: str = ""
    frames: list[int] = field(default_factory=list)  # frames read: [-1] for a still image
    image_format: str = ""  # Pillow's format name ("JPEG", ...); "video" for a video
    width: int | None = None  # the decoded image's (a video's frames') size
    height: int | None = None
    video_info: dict[str, Any] | None = None  # unmask.data.video.VideoInfo as a dict
    provenance: Any = None  # what `read_provenance` gave (None: not asked for)

    @property
    def frames_sampled(self) -> int:
        return len(self.frames) if self.kind == "video" else 0


# ---------------------------------------------------------------- the process's cropper

_CROPPER = None


def init_worker(
    spec: PreprocessSpec, landmarks: bool = True, parent_pid: int = 0, quiet: bool = False
) -> None:
    """Make this process's FaceCropper, the one `extract_file` uses when given none (a pool
    worker, a Ray actor, or a single-threaded caller). `landmarks=False`: no face mesh (same
    boxes and crops). `parent_pid`: die with that process (spawned pool workers). `quiet`:
    silence the C-level stderr where MediaPipe/TFLite log ("INFO: Created TensorFlow Lite
    ..."), so a worker never scrambles the parent's progress bar (unless UNMASK_DEBUG)."""
    global _CROPPER
    if parent_pid:
        from unmask.data.workers import die_with_parent

        die_with_parent(parent_pid)
    if quiet:
        os.environ.setdefault("GLOG_minloglevel", "2")
        if not os.environ.get("UNMASK_DEBUG"):
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
    single_threaded_opencv()
    from unmask.data.faces import FaceCropper

    _CROPPER = FaceCropper(spec, landmarks=landmarks)


def single_threaded_opencv() -> None:
    """One OpenCV thread: the workers (processes or threads) supply the parallelism."""
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)


def worker_cropper():
    """The FaceCropper `init_worker` made in this process."""
    if _CROPPER is None:
        raise RuntimeError("no FaceCropper in this process: call init_worker(spec) first")
    return _CROPPER


# ---------------------------------------------------------------- from files


def faces_in_image(
    image: np.ndarray,
    cropper,
    tiles: Sequence[TileSpec] = (),
    frame: int = -1,
    source: str = "",
) -> list[Face]:
    """The faces `cropper` finds in one decoded RGB image (or video frame), largest first,
    each with the tiles of every TileSpec in `tiles` cut from `image` in its crop box."""
    from unmask.data.tiles import cut_tiles

    size = (int(image.shape[1]), int(image.shape[0]))
    return [
        Face(
            crop=fc.image,
            landmarks=fc.landmarks,
            tiles={t: cut_tiles(image, fc.box, t) for t in tiles},
            box=tuple(int(v) for v in fc.box),
            image_size=size,
            frame=frame,
            face_index=i,
            det_score=None if fc.score is None else float(fc.score),
            source=source,
            detector=fc.detector,
        )
        for i, fc in enumerate(cropper.crop(image))
    ]


def extract_file(
    path: str | Path,
    cropper=None,
    *,
    every: int = 0,
    frames: int = 16,
    tiles: Sequence[TileSpec] = (),
    read_provenance: Callable[[Path], Any] | None = None,
    on_face: Callable[[Face], None] | None = None,
) -> Extraction:
    """Decode one input file (an image, or a video's sampled frames: every `every`-th, else
    `frames` evenly spaced) and find its faces with `cropper` (default: `init_worker`'s).
    Never raises for a bad input (the module docstring's rule). `read_provenance(path)`:
    read beside the pixels when given (unmask.provenance sits above this layer).
    `on_face`: each face is handed to it as found instead of kept in `faces` (prepare
    writes a long video's crops as it goes)."""
    path = Path(path)
    cropper = cropper if cropper is not None else worker_cropper()
    ex = Extraction(file=str(path))
    keep = on_face if on_face is not None else ex.faces.append
    try:
        for frame, image in _decoded(path, ex, cropper.spec, every, frames, read_provenance):
            found = faces_in_image(image, cropper, tiles, frame, str(path))
            ex.frames.append(frame)  # after the search: a frame that failed is not "read"
            for face in found:
                keep(face)
    except BadInputError as exc:
        ex.reason, ex.detail = exc.reason, exc.detail
    except MemoryError:
        ex.reason, ex.detail = "too_large", "out of memory while decoding"
    except Exception as exc:  # a library failure on one odd file must not stop the batch
        ex.reason, ex.detail = "error", f"{exc.__class__.__name__}: {exc}"[:300]
    if ex.reason:
        ex.faces = []
    return ex


def _decoded(
    path: Path,
    ex: Extraction,
    spec: PreprocessSpec,
    every: int,
    frames: int,
    read_provenance: Callable[[Path], Any] | None,
) -> Iterable[tuple[int, np.ndarray]]:
    """(frame, RGB image) of `path`, recording on `ex` what it is; raises BadInputError."""
    from unmask.data.imageio import load_image_with_format, sniff_kind

    kind = sniff_kind(path)  # missing, unreadable, empty, ... (imageio.open_regular)
    if kind is None:
        raise BadInputError(path, "not_an_image", "not an image or video format unmask reads")
    ex.kind = kind
    if read_provenance is not None:  # headers only (about a millisecond); never raises
        ex.provenance = read_provenance(path)
    if kind == "image":
        image, ex.image_format = load_image_with_format(path, spec.max_pixels)
        ex.height, ex.width = image.shape[:2]
        return [(-1, image)]
    from unmask.data.video import iter_frames, video_info

    info = video_info(path)
    ex.video_info = asdict(info)
    ex.image_format, ex.width, ex.height = "video", info.width, info.height
    return iter_frames(path, every=every, frames=frames, max_pixels=spec.max_pixels)


# ---------------------------------------------------------------- from manifest rows


def row_frame(row: Mapping[str, Any]) -> int:
    """The row's video frame index, or -1 for a still image (missing/empty/NaN too)."""
    try:
        f = float(row.get("frame", -1))
    except (TypeError, ValueError):
        return -1
    return int(f) if np.isfinite(f) else -1


def row_box(row: Mapping[str, Any]) -> Box | None:
    """The row's square crop box in its original's pixels; None where the row has none."""
    try:
        return tuple(int(float(row[k])) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))
    except (KeyError, TypeError, ValueError):
        return None


def row_image_size(row: Mapping[str, Any]) -> tuple[int, int] | None:
    """The original's (w, h) as prepare recorded it; None where unknown."""
    try:
        w, h = float(row["orig_width"]), float(row["orig_height"])
    except (KeyError, TypeError, ValueError):
        return None
    return (int(w), int(h)) if np.isfinite(w) and np.isfinite(h) else None


def manifest_folder(row: Mapping[str, Any]) -> Path | None:
    """The folder of the manifest a row was read from: its `abs_path` minus its `path`."""
    abs_p, rel = str(row.get("abs_path", "")), str(row.get("path", ""))
    if not rel or not abs_p.endswith(rel):
        return None
    return Path(abs_p[: -len(rel)] or ".")


def original_path(row: Mapping[str, Any]) -> Path:
    """A row's `original` as prepare wrote it (absolute, or relative to where prepare ran):
    tried as given, then against the manifest's folder."""
    p = Path(str(row["original"]))
    folder = manifest_folder(row)
    if p.is_absolute() or p.exists() or folder is None:
        return p
    return folder / p


def decode_original(row: Mapping[str, Any]) -> np.ndarray:
    """The decoded original of a manifest row: a still image, or the row's own frame of a
    video (slow: the video is decoded up to it). Raises BadInputError."""
    from unmask.data.imageio import load_image

    path, frame = original_path(row), row_frame(row)
    if frame >= 0:
        from unmask.data.video import read_frame

        return read_frame(path, frame)
    return load_image(path)


def face_from_row(
    row: Mapping[str, Any],
    tiles: Sequence[TileSpec] = (),
    *,
    crop: np.ndarray | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Face:
    """A prepared manifest row (`read_manifest`: with `abs_path`, `abs_landmarks`) -> its
    Face: the crop PNG (or `crop`, when the caller has it already), its landmarks, and the
    tiles of every TileSpec in `tiles` cut from the row's decoded original at its frame and
    box (`transform`, e.g. eval's perturbation, is applied to the original first). The
    image size is the decoded original's when tiles were cut, else the recorded one.
    Raises BadInputError when the crop or the original cannot be read."""
    from unmask.data.manifest import load_crop, load_landmarks

    box = row_box(row)
    size = row_image_size(row)
    cut: dict[TileSpec, np.ndarray] = {}
    if tiles:
        from unmask.data.tiles import cut_tiles

        image = decode_original(row)
        if transform is not None:
            image = transform(image)
        cut = {t: cut_tiles(image, box, t) for t in tiles}
        size = (int(image.shape[1]), int(image.shape[0]))
    return Face(
        crop=load_crop(row["abs_path"]) if crop is None else crop,
        landmarks=load_landmarks(row.get("abs_landmarks")) if row.get("landmarks") else None,
        tiles=cut,
        box=box,
        image_size=size,
        frame=row_frame(row),
        face_index=int(_float_or_none(row.get("face_index")) or 0),
        det_score=_float_or_none(row.get("det_score")),
        source=str(row.get("original", "")),
        detector=str(row.get("detector", "") or ""),
    )


def _float_or_none(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None
