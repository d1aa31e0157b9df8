"""`unmask detect`: find every face in images, folders and videos and score it.

The work is a stream, so memory stays flat however many files there are:

    paths -> [worker threads: decode + face detection + crop]  -> crops, in input order
          -> [main thread: model, batched across files]         -> FileResult, one per input

Both stages run at once in one process (decoding, MediaPipe, OpenCV and torch release the
GIL); at most `batch_size + 2 * workers + 2` files are in flight or waiting at any time.
Face mesh runs only for models that read landmarks. Faces are found and cropped with the
model's own saved PreprocessSpec, so detection crops exactly as training did.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from unmask.data.extract import Extraction, Face
from unmask.data.spec import PreprocessSpec
from unmask.jsonio import json_clean

JSON_SCHEMA_VERSION = 1

# The rule used for videos and multi-frame inputs, stated in every report.
VIDEO_RULE = (
    "faces are tracked across sampled frames by box overlap; a track's score is the mean "
    "P(fake) of its frames; the video's score is the highest track score and its verdict is "
    "'fake' when that score reaches the model's threshold"
)


@dataclass
class FaceResult:
    frame: int  # -1 for still images
    face_index: int
    box: list[int]  # square crop box (x0, y0, x1, y1) in original pixels
    det_score: float | None
    p_fake: float
    probs: dict[str, float]
    verdict: str  # "real" | "fake"
    track: int | None = None  # videos only
    driver: str | None = None  # composite models: the member that drove p_fake
    crop: np.ndarray | None = field(default=None, repr=False)  # kept only when asked
    landmarks: np.ndarray | None = field(default=None, repr=False)
    # the stage-1 record the score came from (its tiles, box, image size), kept with the
    # crop: Grad-CAM explains a tile model on the tiles it scored
    face: Face | None = field(default=None, repr=False)


@dataclass
class FileResult:
    file: str
    kind: str  # "image" | "video" | "unknown"
    status: str  # "ok" | "error"
    verdict: str  # "real" | "fake" | "no_face" | "error"
    score: float | None = None  # highest P(fake) over faces (videos: over tracks)
    faces: list[FaceResult] = field(default_factory=list)
    reason: str = ""  # error tag, e.g. corrupt, missing, video_empty
    detail: str = ""
    video: dict[str, Any] | None = None
    # unmask.provenance.Provenance of the original file, read beside the pixels (None: not
    # read); it never changes `score` or `verdict`
    provenance: Any = None

    def to_dict(self) -> dict[str, Any]:
        # the kept arrays never travel (and asdict cannot copy a Face's tiles mapping)
        kept = ("crop", "landmarks", "face")
        d = asdict(replace(self, faces=[replace(f, **dict.fromkeys(kept)) for f in self.faces]))
        for f in d["faces"]:
            for k in kept:
                f.pop(k, None)
        d["provenance"] = None if self.provenance is None else self.provenance.to_dict()
        return json_clean(d)


def detection_spec(spec: PreprocessSpec, largest_only: bool = False) -> PreprocessSpec:
    """The model's crop spec, but scoring every face: a training manifest may keep only
    the largest face per image, a user wants each face judged. Crop geometry (margin,
    size, alignment, background) is unchanged, so crops still match training."""
    from dataclasses import replace

    return replace(spec, faces="largest" if largest_only else "all")


# ---------------------------------------------------------------- inputs


def first_listing(files: Sequence[Path]) -> list[int | None]:
    """For each file, the index of an earlier listing of the same file (`a.jpg`, `./a.jpg`,
    its absolute path, `dir//a.jpg`, a symlink to it), else None: scored once, the rest are
    `duplicate`s, as `prepare` counts them."""
    seen: dict[str, int] = {}
    out: list[int | None] = []
    for i, f in enumerate(files):
        try:
            real = os.path.realpath(f) if f.exists() else None
        except (OSError, ValueError):
            real = None
        out.append(seen.get(real) if real is not None else None)
        if real is not None:
            seen.setdefault(real, i)
    return out


def _with_duplicates(
    files: Sequence[Path], earlier: Sequence[int | None], extracted: Iterator[Extraction]
) -> Iterator[Extraction]:
    """`extracted` (the unique files' items, in order) with a `duplicate` item in the place
    of each repeated listing: every input is accounted for, none is scored twice."""
    for f, e in zip(files, earlier, strict=True):
        if e is None:
            yield next(extracted)
        else:
            yield Extraction(
                str(f),
                reason="duplicate",
                detail=f"same file as {str(files[e])!r} (listed more than once)",
            )


def expand_inputs(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, and every file under named folders (recursive, sorted).
    Missing paths are yielded too: they become `missing` errors, never a crash; so are
    folders that cannot be listed (`unreadable`), FIFOs and devices (`not_a_regular_file`)."""
    from unmask.data.inputs import walk_files

    for p in map(Path, paths):
        if p.is_dir():
            yield from (f for f, _ in walk_files(p, sort=False))
        else:
            yield p


# ---------------------------------------------------------------- stage 1: faces


def wants_landmarks(predictor) -> bool:
    """Whether stage 1 must run face mesh for `predictor` (a two-stream member, say).
    Face mesh costs about a fifth of stage 1 and changes no box or crop, so it runs only
    when the model says it reads landmarks (`predictor.needs`)."""
    return bool(predictor.needs.landmarks)


def extract_for_detect(
    path: Path, every: int, frames: int, cropper=None, tiles: Sequence[Any] = ()
) -> Extraction:
    """`unmask.data.extract.extract_file` as detect calls it, on any engine: the file's
    Content Credentials and metadata read beside its pixels (headers only, never from a
    crop). `cropper` defaults to the process's (`unmask.data.extract.init_worker`)."""
    from unmask.data.extract import extract_file
    from unmask.provenance import read_provenance

    return extract_file(
        path, cropper, every=every, frames=frames, tiles=tiles, read_provenance=read_provenance
    )


def _iter_extracted(
    paths: Iterable[Path],
    spec: PreprocessSpec,
    every: int,
    frames: int,
    workers: int,
    landmarks: bool = True,
    tiles: Sequence[Any] = (),
    window: int | None = None,
) -> Iterator[Extraction]:
    """Stage 1 over all inputs, in input order, with at most `window` (default
    `2 * workers + 2`) files in flight or done but not yet taken.

    `workers` > 1 runs threads of this process, one FaceCropper each. Pillow's decoder,
    MediaPipe graphs and OpenCV release the GIL, so the threads run in parallel, and there
    is no spawned process that re-imports numpy, OpenCV and MediaPipe (seconds of start-up
    each on a small machine, and 200+ MB of memory each) nor crops pickled back. A feeder
    thread keeps the window full while the caller is busy (scoring a batch), so faces are
    found during the model's turn too."""
    from unmask.data.extract import init_worker, single_threaded_opencv

    if workers <= 1:
        init_worker(spec, landmarks)
        for p in paths:
            yield extract_for_detect(p, every, frames, tiles=tiles)
        return
    import threading
    from concurrent.futures import ThreadPoolExecutor

    single_threaded_opencv()
    local = threading.local()
    croppers: list[Any] = []
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="unmask-faces") as pool:
            _start_croppers(pool, workers, local, croppers, spec, landmarks)

            def run(p: Path) -> Extraction:
                return extract_for_detect(p, every, frames, local.cropper, tiles)

            yield from _in_order(pool, run, paths, max(window or 0, 2 * workers + 2))
    finally:
        for c in croppers:
            c.close()


def _start_croppers(pool, workers: int, local, croppers: list, spec, landmarks: bool) -> None:
    """One cropper per pool thread (in `local.cropper`, and listed in `croppers` to close),
    graphs built and run once before any file is read, so MediaPipe's start-up lines
    (silenced: fd 2 is the whole process's) never hide a progress bar or an error line
    printed by the main thread later."""
    import threading

    from unmask.data.faces import FaceCropper

    ready = threading.Barrier(workers)

    def start() -> None:
        try:
            local.cropper = FaceCropper(spec, landmarks=landmarks)
            croppers.append(local.cropper)
            local.cropper.warm_up()
        except BaseException:
            ready.abort()  # the other threads stop waiting; this error reaches the caller
            raise
        ready.wait()  # every thread takes exactly one start task

    for f in [pool.submit(start) for _ in range(workers)]:
        f.result()


def _in_order(pool, run, paths: Iterable[Path], window: int) -> Iterator[Extraction]:
    """`run(p)` for every path on `pool`, yielded in input order, at most `window` submitted
    and not yet taken. A feeder thread submits while the caller works; when the caller
    stops early, queued work is dropped."""
    import queue
    import threading

    slots = threading.Semaphore(window)
    futures: queue.Queue = queue.Queue()
    stop = threading.Event()

    def feed() -> None:
        try:
            for p in paths:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                futures.put(pool.submit(run, p))
        except BaseException as exc:  # reaches the caller, in order
            futures.put(exc)
        finally:
            futures.put(None)

    feeder = threading.Thread(target=feed, name="unmask-feed", daemon=True)
    feeder.start()
    try:
        while (f := futures.get()) is not None:
            if isinstance(f, BaseException):
                raise f
            item = f.result()
            slots.release()
            yield item
    finally:
        stop.set()
        feeder.join()
        while not futures.empty():  # the caller stopped early: drop queued work
            f = futures.get_nowait()
            if f is not None and not isinstance(f, BaseException):
                f.cancel()


# ---------------------------------------------------------------- stage 2: model


def _finish(
    item: Extraction,
    proba: np.ndarray,
    predictor,
    keep_crops: bool,
    drivers: Sequence[str | None] | None = None,
) -> FileResult:
    if item.reason:
        return _failed(item, item.reason, item.detail)
    if len(proba) and not np.isfinite(np.asarray(proba, dtype=np.float64)).all():
        # a score that is not a number is no evidence either way: never a verdict
        return _failed(item, "score_not_finite", "the model gave a NaN or infinite score")
    classes = predictor.classes
    thr = float(predictor.threshold)
    faces: list[FaceResult] = []
    drivers = drivers if drivers is not None else [None] * len(item.faces)
    for f, pr, drv in zip(item.faces, proba, drivers, strict=True):
        pf = float(1.0 - pr[0])
        faces.append(
            FaceResult(
                frame=f.frame,
                face_index=f.face_index,
                box=list(f.box),
                det_score=f.det_score,
                p_fake=round(pf, 6),
                probs={c: round(float(p), 6) for c, p in zip(classes, pr, strict=True)},
                verdict="fake" if pf >= thr else "real",
                driver=drv,
                crop=f.crop if keep_crops else None,
                landmarks=f.landmarks if keep_crops else None,
                face=f if keep_crops else None,
            )
        )
    res = FileResult(item.file, item.kind, "ok", "no_face", faces=faces, provenance=item.provenance)
    if item.kind == "video":
        _video_verdict(res, item, thr)
    elif faces:
        res.score = max(f.p_fake for f in faces)
    if res.score is not None:
        res.verdict = "fake" if res.score >= thr else "real"
    return res


def _failed(item: Extraction, reason: str, detail: str) -> FileResult:
    return FileResult(
        item.file,
        item.kind,
        "error",
        "error",
        reason=reason,
        detail=detail,
        provenance=item.provenance,
    )


def _video_verdict(res: FileResult, item: Extraction, thr: float) -> None:
    """A video's faces joined into tracks (`VIDEO_RULE`): `res.video` and `res.score`."""
    from unmask.inference.tracking import aggregate_video, assign_tracks

    info = dict(item.video_info or {})
    info["frames_sampled"] = item.frames_sampled
    info["rule"] = VIDEO_RULE
    faces = res.faces
    if faces:
        track_ids = assign_tracks([f.frame for f in faces], [f.box for f in faces])
        for f, t in zip(faces, track_ids, strict=True):
            f.track = t
        per_track = aggregate_video(track_ids, [f.p_fake for f in faces], min_frames=2)
        info["tracks"] = [
            {
                "track": t,
                "score": round(s, 6),
                "frames": track_ids.count(t),
                "verdict": "fake" if s >= thr else "real",
            }
            for t, s in sorted(per_track.items())
        ]
        res.score = round(max(per_track.values()), 6)
    res.video = info


def detect_paths(
    paths: Sequence[str | Path],
    predictor,
    *,
    every: int = 0,
    frames: int = 16,
    workers: int | None = None,
    batch_size: int = 32,
    keep_crops: bool = False,
    largest_only: bool = False,
) -> Iterator[FileResult]:
    """One FileResult per input file, in input order (folders expanded recursively)."""
    files = list(expand_inputs(paths))
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(files) > 4 else 1
    workers = max(1, min(workers, len(files)))
    spec = detection_spec(predictor.spec, largest_only)
    landmarks = wants_landmarks(predictor)
    ready: list[Extraction] = []
    n_crops = 0

    threads = _ModelThreads(workers)

    def flush() -> Iterator[FileResult]:
        nonlocal ready, n_crops
        threads.limit()  # torch may have been loading in the background until now
        yield from score_extracted(ready, predictor, keep_crops)
        ready, n_crops = [], 0

    # Room for a whole batch of files plus the threads' work: faces are found while the
    # model scores the previous batch (crops are small; the decoded images are not kept).
    window = batch_size + 2 * workers + 2
    earlier = first_listing(files)
    unique = [f for f, e in zip(files, earlier, strict=True) if e is None]
    extracted = _with_duplicates(
        files,
        earlier,
        _iter_extracted(
            unique, spec, every, frames, workers, landmarks, predictor.needs.tiles, window
        ),
    )
    try:
        for k, item in enumerate(extracted):
            ready.append(item)
            n_crops += len(item.faces)
            # Batches never straddle a block of `batch_size` files: the Ray engine scores whole
            # blocks, so both engines feed the model the same batches (bit-identical scores).
            if n_crops >= batch_size or (k + 1) % batch_size == 0:
                yield from flush()
        if ready:
            yield from flush()
    finally:
        threads.restore()


class _ModelThreads:
    """Torch's intra-op threads while `workers` face threads share this process.

    With OpenMP's passive wait policy (`quiet_openmp`, set by `unmask detect`) idle torch
    threads sleep, so the model may use every core whenever the face threads wait: on 2
    cores, 2 face threads + 2 torch threads scored 300 yonsei faces in 12.4 s against 16.3 s
    with 1 torch thread (issue 13). Under the active (spinning) policy, two OpenMP threads
    spin-waiting beside two face threads cost about 15% more than one, so torch then gets
    the cores the face threads leave (at least 1). `limit()` runs before each batch: a
    model loading in the background (`BackgroundPredictor`) imports torch after the face
    threads have started."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.before: int | None = None

    def limit(self) -> None:
        torch = sys.modules.get("torch")  # only a torch model has loaded it; never import it
        if self.before is not None or torch is None or self.workers <= 1:
            return
        if _passive_openmp():
            return  # idle torch threads sleep: leave torch every core
        self.before = torch.get_num_threads()
        torch.set_num_threads(max(1, min(self.before, (os.cpu_count() or 1) - self.workers)))

    def restore(self) -> None:
        if self.before is not None:
            sys.modules["torch"].set_num_threads(self.before)
            self.before = None


_PASSIVE_SET_BEFORE_TORCH: bool | None = None  # what quiet_openmp() found; None: not called


def quiet_openmp() -> None:
    """OpenMP's passive wait policy for this process (unless the user chose one): torch's
    idle threads then sleep instead of spinning on cores the face threads need. OpenMP
    reads it once, when torch loads: called later (torch already imported, as in a test
    process), it changes nothing and says so to `_ModelThreads`."""
    global _PASSIVE_SET_BEFORE_TORCH
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        _PASSIVE_SET_BEFORE_TORCH = os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"
    else:
        _PASSIVE_SET_BEFORE_TORCH = False


def _passive_openmp() -> bool:
    """Whether torch's OpenMP threads sleep when idle: as `quiet_openmp` found it, else
    (a library caller) as the environment says."""
    if _PASSIVE_SET_BEFORE_TORCH is not None:
        return _PASSIVE_SET_BEFORE_TORCH
    return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"


def score_block(
    items: Sequence[Extraction], predictor, batch_size: int, keep_crops: bool = False
) -> list[FileResult]:
    """Stage 2 on one block of consecutive stage-1 items (at most `batch_size` files), batched
    exactly as `detect_paths` batches them: the Ray engine's model actors call this."""
    out: list[FileResult] = []
    ready: list[Extraction] = []
    n_crops = 0
    for item in items:
        ready.append(item)
        n_crops += len(item.faces)
        if n_crops >= batch_size:
            out += score_extracted(ready, predictor, keep_crops)
            ready, n_crops = [], 0
    if ready:
        out += score_extracted(ready, predictor, keep_crops)
    return out


def score_extracted(
    items: Sequence[Extraction], predictor, keep_crops: bool = False
) -> list[FileResult]:
    """Stage 2 (any engine): one model call for all faces of `items`, one FileResult each."""
    scores = predictor.predict([f for item in items for f in item.faces])
    out, i = [], 0
    for item in items:
        n = len(item.faces)
        out.append(
            _finish(item, scores.proba[i : i + n], predictor, keep_crops, scores.driver[i : i + n])
        )
        i += n
    return out


def score_image(
    image: np.ndarray, predictor, cropper, name: str = "upload", keep_crops: bool = False
) -> FileResult:
    """Score one decoded RGB image in memory (the HTTP server's path): same faces
    (`unmask.data.extract.faces_in_image`) and model as `detect_paths`, no files involved.
    `cropper` is a `FaceCropper` built from `predictor.spec`, reused across calls."""
    from unmask.data.extract import faces_in_image

    faces = faces_in_image(image, cropper, predictor.needs.tiles, source=name)
    scores = predictor.predict(faces)
    item = Extraction(name, "image", faces, frames=[-1])
    return _finish(item, scores.proba, predictor, keep_crops, scores.driver)
