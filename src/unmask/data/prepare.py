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
so MediaPipe never inherits a parent's threads). Each input is decoded and its faces found
by `unmask.data.extract.extract_file` (stage 1, with its one error rule: the `reason`s of
rejected.csv). Each input is accounted for: inputs = accepted (>= 1 crop) + rejected.
"""

from __future__ import annotations

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

from unmask.data.imageio import VIDEO_EXTENSIONS, printable
from unmask.data.inputs import Input, collect_inputs, ensure_writable_dir, safe_name
from unmask.data.manifest import COLUMNS, MANIFEST_NAME, REJECTED_NAME, SPEC_NAME, SPLITS
from unmask.data.spec import PreprocessSpec
from unmask.errors import UnmaskError
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


def init_worker(spec: PreprocessSpec, parent_pid: int = 0) -> None:
    """Set up a pool worker or Ray actor: this process's FaceCropper (landmarks on), stderr
    quiet (`unmask.data.extract.init_worker`)."""
    from unmask.data.extract import init_worker as init_cropper

    init_cropper(spec, landmarks=True, parent_pid=parent_pid, quiet=True)


def run_chunk(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`process_input` on each task with the cropper `init_worker` made."""
    from unmask.data.extract import worker_cropper

    return [process_input(t, worker_cropper()) for t in tasks]


def _fmt_score(score: float | None) -> str:
    return "" if score is None else f"{score:.4f}"


def process_input(task: dict[str, Any], cropper) -> dict[str, Any]:
    """Crop one input (image or video) and write its crops and work record. Never raises for
    bad input: the record says what was rejected and why (`unmask.data.extract`'s rule)."""
    from unmask.data.extract import extract_file

    out_dir = Path(task["out_dir"])
    rel_dir = Path("crops") / task["source_dir"] / task["label_dir"]
    rows: list[dict[str, Any]] = []
    with_face: set[int] = set()

    def write(face) -> None:
        with_face.add(face.frame)
        rows.append(_write_face(face, task["uid"], out_dir, rel_dir))

    ex = extract_file(
        task["path"], cropper, every=task["every"], frames=task["frames"], on_face=write
    )
    if ex.reason:
        rows = []
    meta: dict[str, Any] = {
        "kind": "" if ex.kind == "unknown" else ex.kind,
        "format": ex.image_format,
        "width": "" if ex.width is None else ex.width,
        "height": "" if ex.height is None else ex.height,
    }
    if ex.kind == "video" and not ex.reason:
        meta["frames_read"] = len(ex.frames)
    for r in rows:
        r.update(orig_width=meta["width"], orig_height=meta["height"], orig_format=meta["format"])
    record = {
        "version": RECORD_VERSION,
        "fingerprint": task["fingerprint"],
        "uid": task["uid"],
        "file": ex.file,
        **meta,
        "rows": rows,
        "rejected": _rejections(ex, with_face),
    }
    rec_path = out_dir / WORK_DIR / f"{task['uid']}.json"
    tmp = rec_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
    tmp.replace(rec_path)
    return record


def _write_face(face, uid: str, out_dir: Path, rel_dir: Path) -> dict[str, Any]:
    """Write one face's crop PNG (and landmarks .npy) under `out_dir`: its manifest row."""
    import numpy as np

    from unmask.data.imageio import save_png

    frame, k = face.frame, face.face_index
    name = uid + (f"_f{frame:06d}" if frame >= 0 else "") + (f"_{k}" if k else "")
    png = rel_dir / f"{name}.png"
    save_png(out_dir / png, face.crop)
    lm = ""
    if face.landmarks is not None:
        lm_path = rel_dir / f"{name}.npy"
        tmp = out_dir / lm_path.with_suffix(".npy.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(face.landmarks, dtype=np.float32), allow_pickle=False)
        tmp.replace(out_dir / lm_path)
        lm = lm_path.as_posix()
    x0, y0, x1, y1 = face.box
    return {
        "path": png.as_posix(),
        "frame": frame,
        "face_index": k,
        "box_x0": x0,
        "box_y0": y0,
        "box_x1": x1,
        "box_y1": y1,
        "det_score": _fmt_score(face.det_score),
        "landmarks": lm,
        "detector": face.detector or ("whole" if face.det_score is None else ""),
    }


def _rejections(ex, with_face: set[int]) -> list[dict[str, Any]]:
    """rejected.csv's rows of one input: its video frames without a face (frame >= 0),
    then why the input gave no crop at all (frame -1), if it gave none."""
    out = [
        {"frame": f, "reason": "no_face", "detail": "no face in frame"}
        for f in ex.frames
        if f >= 0 and f not in with_face
    ]
    if ex.reason:
        out.append({"frame": -1, "reason": ex.reason, "detail": ex.detail})
    elif not with_face:
        detail = f"no face in {len(ex.frames)} frames" if ex.kind == "video" else "no face found"
        out.append({"frame": -1, "reason": "no_face", "detail": detail})
    return out


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
    fractions, regex = _check_options(every, frames, assign_split, splits, group_regex)
    out = Path(out_dir).expanduser()
    given = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    items = _inputs_and_output(given, out, unlabeled)

    records, todo = _plan(items, out, spec, every, frames)
    n_reused = len(records)
    done = n_reused + sum(1 for it in items if it.problem is not None)
    say = log or (lambda msg: print(msg, file=sys.stderr))
    if n_reused:
        say(f"resuming: {n_reused} input(s) already done in {out}, {len(todo)} to do")
    run_tasks = executor or _run_tasks
    run_tasks(todo, spec, max(int(workers), 1), progress, records, total=len(items), done=done)

    manifest_rows, rejected_rows = _table_rows(items, records, regex)
    manifest_rows = _with_splits(manifest_rows, assign_split, fractions, seed)
    manifest_path, rejected_path = _write_tables(out, fmt, manifest_rows, rejected_rows)
    if txt:
        _write_txt(out, manifest_rows, binary)
    summary = summarize(items, records, manifest_rows)
    _write_csv(out / SUMMARY_NAME, list(summary[0].keys()) if summary else [], summary)
    options = {
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
    }
    total = summary[-1]
    _write_meta(out, spec, options, total, len(manifest_rows))
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


def _inputs_and_output(given: list[Any], out: Path, unlabeled: bool) -> list[Input]:
    """The inputs, once the output folder is known to be usable: not a file, not inside an
    input folder (nor holding one), writable (checked before any work, not after an hour of
    cropping); its work folder made."""
    if out.exists() and not out.is_dir():
        raise UnmaskError(f"output {out} exists and is not a folder")
    items, roots = collect_inputs(given, unlabeled=unlabeled, out_dir=None)
    folders = {Path(p).expanduser().resolve() for p in given if Path(p).expanduser().is_dir()}
    _check_paths(out, items, folders)
    if not items:
        raise UnmaskError(f"no input files found in {', '.join(map(str, roots))}")
    ensure_writable_dir(out)
    (out / WORK_DIR).mkdir(exist_ok=True)
    return items


def _with_splits(
    rows: list[dict[str, Any]], assign_split: str | None, fractions, seed: int
) -> list[dict[str, Any]]:
    """The rows with their `split`: `assign_split` for all, else grouped and stratified."""
    if assign_split is not None:
        for r in rows:
            r["split"] = assign_split
        return rows
    if not rows:
        return rows
    from unmask.data.splits import assign_splits

    return assign_splits(rows, fractions, seed)


def _check_options(
    every: int,
    frames: int,
    assign_split: str | None,
    splits: Sequence[float] | str,
    group_regex: str | None,
) -> tuple[tuple[float, ...], re.Pattern[str] | None]:
    """Refuse bad options before any work: (split fractions, compiled group regex)."""
    from unmask.data.splits import parse_fractions

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
    return fractions, regex


def _plan(
    items: Sequence[Input], out: Path, spec: PreprocessSpec, every: int, frames: int
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(records reused from an earlier run, by uid; tasks for the rest, videos first so
    that a long video does not finish alone at the end)."""
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
                "video_first": it.path.suffix.lower() in VIDEO_EXTENSIONS,
            }
        )
    todo.sort(key=lambda t: not t["video_first"])
    return records, todo


def _table_rows(
    items: Sequence[Input], records: dict[str, dict[str, Any]], regex: re.Pattern[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(manifest rows, rejected rows), in input order, splits not yet assigned."""
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
    return manifest_rows, rejected_rows


def _write_tables(
    out: Path, fmt: str, manifest_rows: list[dict[str, Any]], rejected_rows: list[dict[str, Any]]
) -> tuple[Path, Path]:
    """manifest and rejected tables as CSV or Parquet (the other format's, from an earlier
    run, removed): their paths."""
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
    for stale in (manifest_path, rejected_path):
        stale.with_suffix(".csv" if fmt == "parquet" else ".parquet").unlink(missing_ok=True)
    return manifest_path, rejected_path


def _write_txt(out: Path, manifest_rows: Sequence[dict[str, Any]], binary: bool) -> None:
    """train.txt val.txt test.txt: `path label-id` per row of a known label."""
    for split in SPLITS:
        lines = [
            f"{r['path']} {label_to_index(r['label'], 2 if binary else 3)}"
            for r in manifest_rows
            if r["split"] == split and r["label"] in (DATA_LABELS if binary else LABELS)
        ]
        (out / f"{split}.txt").write_text("".join(x + "\n" for x in lines), encoding="utf-8")


def _write_meta(
    out: Path, spec: PreprocessSpec, options: dict[str, Any], total: dict[str, Any], n_crops: int
) -> None:
    """prepare.json: the spec, the options, the detector and the counts."""
    from unmask import __version__
    from unmask.config import to_dict
    from unmask.data.faces import DETECTOR_PASSES

    meta = {
        "preprocess": to_dict(spec),
        "options": options,
        "detector": "mediapipe face_detection cascade: "
        + ", ".join(name for name, _, _ in DETECTOR_PASSES),
        "counts": {
            "inputs": total["inputs"],
            "accepted": total["accepted"],
            "rejected": total["rejected"],
            "crops": n_crops,
        },
        "unmask_version": __version__,
    }
    (out / SPEC_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


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
            initializer=init_worker,
            initargs=(spec, os.getpid()),
        ) as pool:
            futures = [pool.submit(run_chunk, c) for c in chunks]
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
