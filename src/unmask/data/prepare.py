"""`prepare()`: inputs (images, videos, folders, CSV) -> face crops + manifest.

Output folder:

    crops/<source>/<label>/<id>.png     face crops (PNG), <id>.npy beside them: (468, 3)
                                        float32 face-mesh landmarks (absent when none found)
    manifest.csv                        one row per crop (`unmask.data.manifest.COLUMNS` +
                                        detector, orig_width, orig_height, orig_format)
    rejected.csv                        file, frame, reason, detail, source, label: every input
                                        that gave no crop (frame -1), and video frames without
                                        a face (frame >= 0)
    prepare.json                        the PreprocessSpec and the options used
    summary.csv                         the per source/label table printed at the end
    train.txt val.txt test.txt          with txt=True: `path label-id` (0 real, 1 gan,
                                        2 edited; binary: 1 for every fake)
    .work/<id>.json                     one record per input: what it produced. A re-run
                                        skips inputs whose record matches (same file size and
                                        mtime, same spec and frame options, crops present)
                                        and writes the identical manifest.

Work runs in a process pool (`workers`, one FaceCropper per process; spawned, not forked,
so MediaPipe never inherits a parent's threads). Each input is accounted for: inputs =
accepted (>= 1 crop) + rejected.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unmask.data.imageio import printable
from unmask.data.inputs import Input, collect_inputs, ensure_writable_dir, safe_name
from unmask.data.manifest import COLUMNS, MANIFEST_NAME, REJECTED_NAME, SPEC_NAME, SPLITS
from unmask.data.spec import PreprocessSpec
from unmask.errors import BadInputError, UnmaskError
from unmask.labels import DATA_LABELS, LABELS, label_to_index

RECORD_VERSION = 1
WORK_DIR = ".work"
SUMMARY_NAME = "summary.csv"
EXTRA_COLUMNS: tuple[str, ...] = ("detector", "orig_width", "orig_height", "orig_format")
MANIFEST_COLUMNS: tuple[str, ...] = COLUMNS + EXTRA_COLUMNS
REJECTED_COLUMNS: tuple[str, ...] = ("file", "frame", "reason", "detail", "source", "label")


@dataclass
class PrepareResult:
    manifest_path: Path
    rejected_path: Path
    n_inputs: int
    n_accepted: int
    n_rejected: int
    n_faces: int  # manifest rows (crops)
    summary: list[dict[str, Any]] = field(default_factory=list)
    n_reused: int = 0  # inputs taken from an earlier run's records
    out_dir: Path | None = None


# ---------------------------------------------------------------- worker side

_CROPPER = None


def _init_worker(spec_dict: dict[str, Any], parent_pid: int = 0) -> None:
    global _CROPPER
    if parent_pid:
        from unmask.data.workers import die_with_parent

        die_with_parent(parent_pid)
    os.environ.setdefault("GLOG_minloglevel", "2")
    if not os.environ.get("UNMASK_DEBUG"):
        # MediaPipe/TFLite log to the C-level stderr ("INFO: Created TensorFlow Lite ...");
        # silence it in workers so the progress bar stays readable. Errors come back as
        # records, not stderr.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)
    from unmask.data.faces import FaceCropper

    _CROPPER = FaceCropper(PreprocessSpec(**spec_dict))


def _run_chunk(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [process_input(t, _CROPPER) for t in tasks]


def _fmt_score(score: float | None) -> str:
    return "" if score is None else f"{score:.4f}"


def process_input(task: dict[str, Any], cropper) -> dict[str, Any]:
    """Crop one input (image or video) and write its crops and work record. Never raises for
    bad input: the record says what was rejected and why."""
    import numpy as np

    from unmask.data.imageio import load_image_with_format, save_png, sniff_kind
    from unmask.data.video import iter_frames, video_info

    out_dir = Path(task["out_dir"])
    path = Path(task["path"])
    spec: PreprocessSpec = cropper.spec
    rel_dir = Path("crops") / task["source_dir"] / task["label_dir"]
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"kind": "", "format": "", "width": "", "height": ""}

    def add_crops(image, frame: int) -> int:
        crops = cropper.crop(image)
        for k, c in enumerate(crops):
            name = task["uid"] + (f"_f{frame:06d}" if frame >= 0 else "") + (f"_{k}" if k else "")
            png = rel_dir / f"{name}.png"
            save_png(out_dir / png, c.image)
            lm = ""
            if c.landmarks is not None:
                lm_path = rel_dir / f"{name}.npy"
                tmp = out_dir / lm_path.with_suffix(".npy.tmp")
                with open(tmp, "wb") as fh:
                    np.save(fh, np.asarray(c.landmarks, dtype=np.float32), allow_pickle=False)
                tmp.replace(out_dir / lm_path)
                lm = lm_path.as_posix()
            rows.append(
                {
                    "path": png.as_posix(),
                    "frame": frame,
                    "face_index": k,
                    "box_x0": c.box[0],
                    "box_y0": c.box[1],
                    "box_x1": c.box[2],
                    "box_y1": c.box[3],
                    "det_score": _fmt_score(c.score),
                    "landmarks": lm,
                    "detector": c.detector or ("whole" if c.score is None else ""),
                }
            )
        return len(crops)

    try:
        if not path.exists():
            raise BadInputError(path, "missing", "no such file")
        if path.is_file() and path.stat().st_size == 0:
            raise BadInputError(path, "empty", "zero bytes")
        kind = sniff_kind(path)
        meta["kind"] = kind or ""
        if kind == "image":
            image, fmt = load_image_with_format(path, spec.max_pixels)
            meta.update(format=fmt, width=image.shape[1], height=image.shape[0])
            if add_crops(image, -1) == 0:
                rejected.append({"frame": -1, "reason": "no_face", "detail": "no face found"})
        elif kind == "video":
            info = video_info(path)
            meta.update(format="video", width=info.width, height=info.height)
            n_frames = n_faces = 0
            for idx, frame in iter_frames(
                path, every=task["every"], frames=task["frames"], max_pixels=spec.max_pixels
            ):
                n_frames += 1
                if add_crops(frame, idx) == 0:
                    rejected.append(
                        {"frame": idx, "reason": "no_face", "detail": "no face in frame"}
                    )
                else:
                    n_faces += 1
            meta["frames_read"] = n_frames
            if n_faces == 0:
                rejected.append(
                    {"frame": -1, "reason": "no_face", "detail": f"no face in {n_frames} frames"}
                )
        else:
            raise BadInputError(path, "not_an_image", "not an image or video format unmask reads")
    except BadInputError as exc:
        rows = []
        rejected.append({"frame": -1, "reason": exc.reason, "detail": exc.detail})
    except Exception as exc:  # a library failure on one odd file must not stop the batch
        rows = []
        rejected.append(
            {"frame": -1, "reason": "error", "detail": f"{exc.__class__.__name__}: {exc}"[:300]}
        )
    for r in rows:
        r.update(orig_width=meta["width"], orig_height=meta["height"], orig_format=meta["format"])
    record = {
        "version": RECORD_VERSION,
        "fingerprint": task["fingerprint"],
        "uid": task["uid"],
        "file": str(path),
        **meta,
        "rows": rows,
        "rejected": rejected,
    }
    rec_path = out_dir / WORK_DIR / f"{task['uid']}.json"
    tmp = rec_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
    tmp.replace(rec_path)
    return record


# ---------------------------------------------------------------- parent side


def _fingerprint(item: Input, spec: PreprocessSpec, every: int, frames: int) -> str:
    try:
        st = item.path.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    payload = json.dumps(
        {
            "v": RECORD_VERSION,
            "file": str(item.path),
            "stamp": stamp,
            "spec": dataclasses.asdict(spec),
            "every": every,
            "frames": frames,
            "label": item.label,
            "source": item.source,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _load_record(out_dir: Path, uid: str, fingerprint: str) -> dict[str, Any] | None:
    p = out_dir / WORK_DIR / f"{uid}.json"
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("fingerprint") != fingerprint or rec.get("version") != RECORD_VERSION:
        return None
    for r in rec.get("rows", []):
        if not (out_dir / r["path"]).is_file():
            return None
        if r.get("landmarks") and not (out_dir / r["landmarks"]).is_file():
            return None
    return rec


def _check_paths(out_dir: Path, items: Sequence[Input], folders: set[Path]) -> None:
    out = out_dir.resolve()
    for root in folders:
        if out == root or root in out.parents:
            raise UnmaskError(
                f"output folder {out} is inside the input folder {root}; choose an output "
                "folder outside it (inputs are never modified)"
            )
        if out in root.parents:
            raise UnmaskError(f"input folder {root} is inside the output folder {out}")
    for it in items:
        p = it.path
        if out in p.parents:
            raise UnmaskError(f"input {p} is inside the output folder {out}")


def _group_of(item: Input, regex: re.Pattern[str] | None) -> str:
    if regex is not None:
        m = regex.search(Path(item.key).stem)
        if m:
            value = m.group(1) if m.groups() else m.group(0)
            if value:
                return f"{item.source}:{value}"
    if item.group:
        return item.group
    return f"{item.source}:{item.key}"


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})
    tmp.replace(path)


def summarize(
    items: Sequence[Input],
    records: dict[str, dict[str, Any]],
    manifest_rows: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Per (source, label): inputs, accepted, rejected, faces (crops), detection rate,
    rejections by reason, rows per split; plus a TOTAL row."""
    stats: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {
            "inputs": 0,
            "accepted": 0,
            "rejected": 0,
            "faces": 0,
            "reasons": Counter(),
            **{s: 0 for s in SPLITS},
        }
    )
    for it in items:
        s = stats[(it.source, it.label)]
        s["inputs"] += 1
        rec = records.get(it.uid)
        if rec and rec["rows"]:
            s["accepted"] += 1
        else:
            s["rejected"] += 1
            reason = (
                it.problem[0]
                if it.problem
                else next(
                    (r["reason"] for r in (rec or {}).get("rejected", []) if r["frame"] == -1),
                    "error",
                )
            )
            s["reasons"][reason] += 1
    for r in manifest_rows:
        s = stats[(r["source"], r["label"])]
        s["faces"] += 1
        if r["split"] in SPLITS:
            s[r["split"]] += 1
    out = []
    total = {
        "source": "TOTAL",
        "label": "",
        "inputs": 0,
        "accepted": 0,
        "rejected": 0,
        "faces": 0,
        "reasons": Counter(),
        **{s: 0 for s in SPLITS},
    }
    for (source, label), s in sorted(stats.items()):
        row = {"source": source, "label": label, **s}
        out.append(row)
        for k in ("inputs", "accepted", "rejected", "faces", *SPLITS):
            total[k] += s[k]
        total["reasons"] += s["reasons"]
    out.append(total)
    for row in out:
        row["face_rate"] = round(row["accepted"] / row["inputs"], 4) if row["inputs"] else 0.0
        row["rejected_by_reason"] = " ".join(
            f"{k}:{v}" for k, v in sorted(row.pop("reasons").items())
        )
    return out


def format_summary(summary: Sequence[dict[str, Any]]) -> str:
    """The summary as a fixed-width text table."""
    cols = [
        "source",
        "label",
        "inputs",
        "accepted",
        "rejected",
        "face_rate",
        "faces",
        *SPLITS,
        "rejected_by_reason",
    ]
    heads = {"face_rate": "face%", "faces": "crops"}
    cells = [[heads.get(c, c) for c in cols]]
    for r in summary:
        cells.append([f"{100 * r[c]:.1f}" if c == "face_rate" else str(r[c]) for c in cols])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            v.ljust(widths[i]) if i in (0, 1, len(cols) - 1) else v.rjust(widths[i])
            for i, v in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0 or (n == len(cells) - 2):
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def prepare(
    inputs,
    out_dir: str | Path,
    spec: PreprocessSpec = PreprocessSpec(),  # noqa: B008 - frozen dataclass
    *,
    splits: Sequence[float] | str = (0.7, 0.15, 0.15),
    seed: int = 0,
    every: int = 0,
    frames: int = 16,
    group_regex: str | None = None,
    workers: int = 2,
    assign_split: str | None = None,
    progress: bool = True,
    unlabeled: bool = False,
    txt: bool = False,
    binary: bool = False,
    print_summary: bool = False,
    log: Callable[[str], None] | None = None,
    fmt: str = "csv",
    executor: Callable[..., None] | None = None,
) -> PrepareResult:
    """Crop the faces of `inputs` (a folder, a CSV, a file, or a list of files/folders) into
    `out_dir` and write the manifest. See the module docstring for the output layout.
    `fmt`: "csv" or "parquet" (manifest and rejected tables). `executor`: runs the queued
    tasks instead of the local process pool, same signature as `_run_tasks` (the Ray engine,
    `unmask.cluster.prepare.run_tasks_on_ray`)."""
    from unmask.data.splits import assign_splits, parse_fractions

    if every < 0:
        raise UnmaskError(f"--every must be >= 0, got {every}")
    if frames < 1:
        raise UnmaskError(f"--frames must be >= 1, got {frames}")
    if assign_split is not None and assign_split not in SPLITS:
        raise UnmaskError(f"assign_split must be one of {', '.join(SPLITS)}, got {assign_split!r}")
    try:
        fractions = parse_fractions(splits)
    except ValueError as exc:
        raise UnmaskError(str(exc)) from None
    regex = None
    if group_regex:
        try:
            regex = re.compile(group_regex)
        except re.error as exc:
            raise UnmaskError(
                f"--group-regex {group_regex!r} is not a valid regex: {exc}"
            ) from None
    workers = max(int(workers), 1)

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UnmaskError(f"output {out} exists and is not a folder")
    items, roots = collect_inputs(inputs, unlabeled=unlabeled, out_dir=None)
    given = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    folders = {Path(p).expanduser().resolve() for p in given if Path(p).expanduser().is_dir()}
    _check_paths(out, items, folders)
    if not items:
        raise UnmaskError(f"no input files found in {', '.join(map(str, roots))}")
    ensure_writable_dir(out)  # before any work: not after an hour of cropping
    (out / WORK_DIR).mkdir(exist_ok=True)

    # plan: reuse matching records, queue the rest
    records: dict[str, dict[str, Any]] = {}
    todo: list[dict[str, Any]] = []
    uids: set[str] = set()
    for it in items:
        if it.uid in uids:  # a hash collision of names would overwrite crops: disambiguate
            it.key = f"{it.key}#{it.order}"
        uids.add(it.uid)
        if it.problem is not None:
            continue
        fp = _fingerprint(it, spec, every, frames)
        rec = _load_record(out, it.uid, fp)
        if rec is not None:
            records[it.uid] = rec
            continue
        todo.append(
            {
                "path": str(it.path),
                "uid": it.uid,
                "fingerprint": fp,
                "out_dir": str(out),
                "source_dir": safe_name(it.source),
                "label_dir": safe_name(it.label) if it.label else "unlabeled",
                "every": every,
                "frames": frames,
                "video_first": it.path.suffix.lower()
                in (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"),
            }
        )
    n_reused = len(records)
    n_problem = sum(1 for it in items if it.problem is not None)
    # videos first so that a long video does not finish alone at the end
    todo.sort(key=lambda t: not t["video_first"])
    say = log or (lambda msg: print(msg, file=sys.stderr))
    if n_reused:
        say(f"resuming: {n_reused} input(s) already done in {out}, {len(todo)} to do")
    run_tasks = executor or _run_tasks
    run_tasks(todo, spec, workers, progress, records, total=len(items), done=n_reused + n_problem)

    # manifest rows, in input order
    manifest_rows: list[dict[str, Any]] = []
    rejected_rows: list[dict[str, Any]] = []
    for it in items:
        base = {"source": it.source, "label": it.label}
        if it.problem is not None:
            reason, detail = it.problem
            row = {"file": printable(it.path), "frame": -1, "reason": reason, "detail": detail}
            rejected_rows.append({**row, **base})
            continue
        rec = records[it.uid]
        group = _group_of(it, regex)
        for r in rec["rows"]:
            manifest_rows.append(
                {
                    **r,
                    **base,
                    "group": group,
                    "original": str(it.path),
                    "method": it.method,
                    "parent": "",
                }
            )
        for r in rec["rejected"]:
            rejected_rows.append({"file": printable(it.path), **r, **base})
    if assign_split is not None:
        for r in manifest_rows:
            r["split"] = assign_split
    elif manifest_rows:
        manifest_rows = assign_splits(manifest_rows, fractions, seed)

    manifest_path = out / MANIFEST_NAME
    rejected_path = out / REJECTED_NAME
    if fmt == "parquet":
        from unmask.data.tables import write_table

        manifest_path = manifest_path.with_suffix(".parquet")
        rejected_path = rejected_path.with_suffix(".parquet")
        write_table(manifest_path, MANIFEST_COLUMNS, manifest_rows)
        write_table(rejected_path, REJECTED_COLUMNS, rejected_rows)
    else:
        _write_csv(manifest_path, MANIFEST_COLUMNS, manifest_rows)
        _write_csv(rejected_path, REJECTED_COLUMNS, rejected_rows)
    for stale in (manifest_path, rejected_path):  # the other format's table from an earlier run
        stale.with_suffix(".csv" if fmt == "parquet" else ".parquet").unlink(missing_ok=True)
    if txt:
        for split in SPLITS:
            lines = [
                f"{r['path']} {label_to_index(r['label'], 2 if binary else 3)}"
                for r in manifest_rows
                if r["split"] == split and r["label"] in (DATA_LABELS if binary else LABELS)
            ]
            (out / f"{split}.txt").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    summary = summarize(items, records, manifest_rows)
    _write_csv(out / SUMMARY_NAME, list(summary[0].keys()) if summary else [], summary)
    from unmask import __version__
    from unmask.config import to_dict
    from unmask.data.faces import DETECTOR_PASSES

    meta = {
        "preprocess": to_dict(spec),
        "options": {
            "inputs": [str(Path(p).expanduser().resolve()) for p in given],
            "splits": list(fractions),
            "seed": seed,
            "every": every,
            "frames": frames,
            "group_regex": group_regex,
            "assign_split": assign_split,
            "unlabeled": unlabeled,
            "txt": txt,
            "binary": binary,
        },
        "detector": "mediapipe face_detection cascade: "
        + ", ".join(name for name, _, _ in DETECTOR_PASSES),
        "counts": {
            "inputs": len(items),
            "accepted": summary[-1]["accepted"],
            "rejected": summary[-1]["rejected"],
            "crops": len(manifest_rows),
        },
        "unmask_version": __version__,
    }
    (out / SPEC_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    total = summary[-1]
    result = PrepareResult(
        manifest_path=manifest_path,
        rejected_path=rejected_path,
        n_inputs=len(items),
        n_accepted=total["accepted"],
        n_rejected=total["rejected"],
        n_faces=len(manifest_rows),
        summary=summary,
        n_reused=n_reused,
        out_dir=out,
    )
    assert result.n_inputs == result.n_accepted + result.n_rejected
    if print_summary:
        print(format_summary(summary))
    return result


def _run_tasks(
    todo: list[dict[str, Any]],
    spec: PreprocessSpec,
    workers: int,
    progress: bool,
    records: dict[str, dict[str, Any]],
    total: int,
    done: int,
) -> None:
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        initial=done,
        disable=not progress,
        unit="input",
        desc="prepare",
        dynamic_ncols=True,
        file=sys.stderr,
    )
    try:
        if not todo:
            return
        if workers <= 1 or len(todo) <= 4:
            from unmask.data.faces import FaceCropper

            with FaceCropper(spec) as cropper:
                for t in todo:
                    rec = process_input(t, cropper)
                    records[rec["uid"]] = rec
                    bar.update(1)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        workers = min(workers, len(todo))
        chunk = max(1, min(16, len(todo) // (workers * 8) or 1))
        chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(dataclasses.asdict(spec), os.getpid()),
        ) as pool:
            futures = [pool.submit(_run_chunk, c) for c in chunks]
            try:
                for fut in as_completed(futures):
                    for rec in fut.result():
                        records[rec["uid"]] = rec
                        bar.update(1)
            except BrokenProcessPool:
                raise UnmaskError(
                    "a worker process died or failed to start (out of memory? set "
                    "UNMASK_DEBUG=1 to see its messages); finished inputs are saved: run the "
                    "same command again to resume"
                ) from None
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        bar.close()
