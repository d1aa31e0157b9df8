"""`unmask detect PATH...`: which faces are real? Images, folders and videos."""

from __future__ import annotations

import argparse
import sys

HELP = "find and score every face in images, folders and videos"
DESCRIPTION = """\
Find every face in the given images, folders (recursive) and videos, score each one with a
saved model (default: the model that ships with unmask) and print a table: file, frame,
face box, P(fake) (and P(gan), P(edited) for 3-class models), and the verdict at the model's
threshold. Files that cannot be read are reported on stderr and never stop the run.

Videos: frames are sampled (--frames K evenly spaced, or --every N), faces are tracked by
box overlap, each track's score is the mean P(fake) of its frames, and the video's verdict
comes from its highest-scoring track.

examples:
  unmask detect photo.jpg
  unmask detect photos/ clip.mp4 --json > results.json
  unmask detect photos/ --annotate out/annotated --explain out/gradcam
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="images, folders or videos")
    p.add_argument(
        "--model", "-m", default=None, help="saved model folder (default: the shipped model)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--csv",
        "--table",
        dest="csv",
        metavar="FILE",
        help="also write the results to FILE (CSV; or as --format says); written as "
        "FILE.tmp and renamed when complete",
    )
    p.add_argument("--annotate", metavar="DIR", help="write images with boxes and scores")
    p.add_argument(
        "--explain",
        metavar="DIR",
        help="write a Grad-CAM overlay (CNN) or spectrum plot (classical) per face; a "
        "composite's members each in DIR/<member>/",
    )
    p.add_argument("--timeline", metavar="DIR", help="write a PNG of scores per frame per video")
    p.add_argument(
        "--frames", type=int, default=16, help="frames sampled evenly per video (default 16)"
    )
    p.add_argument("--every", type=int, default=0, help="instead: every Nth frame of videos")
    p.add_argument(
        "--largest-only",
        action="store_true",
        help="score only the largest face of each image/frame (default: every face)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="override the model's calibrated P(fake) threshold",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads for decoding and face detection (default: up to 2; with --engine "
        "ray: CPU actors)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--device",
        default=None,
        help="cpu or cuda (CNN models; default cpu, with --engine ray: cuda when the "
        "cluster has GPUs)",
    )
    from unmask.inference.onnx_runtime import add_runtime_argument

    add_runtime_argument(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    from unmask.cluster.options import add_engine_arguments
    from unmask.inference.sinks import FILE_FORMATS

    add_engine_arguments(
        p,
        "the --table file's format: one row per face (csv, parquet) or one record per file as "
        "--json prints it (json; jsonl: one line each); default csv",
        FILE_FORMATS,
    )
    p.add_argument(
        "--model-workers",
        type=int,
        default=1,
        metavar="N",
        help="with --engine ray: model actors (one GPU each on GPU clusters; default 1)",
    )
    p.add_argument(
        "--shards",
        metavar="DIR",
        help="with --engine ray: the workers write the per-face rows as Parquet shards into "
        "DIR (new or empty) instead of sending them back; only totals are printed",
    )


def run(args: argparse.Namespace) -> int:
    from unmask.cluster.options import engine_session
    from unmask.errors import UnmaskError
    from unmask.inference.detect import expand_inputs, quiet_openmp

    quiet_openmp()  # before anything loads torch: its idle threads sleep while faces are found
    _check_arguments(args)
    model_dir, predictor = _start_model(args)
    files = list(expand_inputs(args.paths))
    if not files:
        raise UnmaskError("no files found in " + ", ".join(args.paths))
    if args.shards:
        return _run_shards(args, files, model_dir, predictor)
    with engine_session(args, num_cpus=(args.workers or 2) + 1):
        results = _results(args, files, model_dir, predictor)
        with _choose_sinks(args, predictor, model_dir) as sinks:
            counts = _write_results(args, results, sinks, predictor, len(files))
            sinks.finish(counts)
    return 1 if counts["ok"] == 0 and counts["errors"] > 0 else 0


def _check_arguments(args: argparse.Namespace) -> None:
    """Every flag and output checked before any work, each in one line."""
    from unmask.data.inputs import ensure_writable_dir, ensure_writable_file
    from unmask.errors import UnmaskError
    from unmask.inference.device import check_device
    from unmask.inference.onnx_runtime import resolve_runtime

    if args.frames < 1 or args.every < 0:
        raise UnmaskError("--frames must be >= 1 and --every >= 0")
    if args.batch_size < 1 or (args.workers is not None and args.workers < 1):
        raise UnmaskError("--batch-size and --workers must be >= 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UnmaskError("--threshold must be within [0, 1]")
    if args.device is not None:
        check_device(args.device)
    resolve_runtime(args.runtime, args.device or "cpu")  # a bad choice: one line, no work
    if args.csv:  # outputs checked before any work, not after it
        ensure_writable_file(args.csv, "--csv file")
        if args.format == "parquet" and not args.shards:
            from unmask.data.tables import require_pyarrow

            require_pyarrow()
    for flag in ("annotate", "explain", "timeline"):
        if getattr(args, flag):
            ensure_writable_dir(getattr(args, flag), f"--{flag} folder")


def _start_model(args: argparse.Namespace):
    """(model folder, predictor). model.json is read and checked now; the network loads in
    a thread while the first files are decoded and their faces found (issue 13: ~2 s of
    start-up hidden)."""
    from pathlib import Path

    from unmask.inference.background import BackgroundPredictor
    from unmask.inference.saved_model import default_model_dir

    model_dir = Path(args.model) if args.model else default_model_dir()
    predictor = BackgroundPredictor(model_dir, device=args.device or "cpu", runtime=args.runtime)
    if args.threshold is not None:
        predictor.threshold = args.threshold
    return model_dir, predictor


def _results(args: argparse.Namespace, files, model_dir, predictor):
    """The FileResults, one per file in input order, from the engine the flags chose."""
    import itertools

    from unmask.inference.detect import detect_paths, detection_spec

    keep = bool(args.explain)
    if args.engine == "ray":
        from unmask.cluster.detect import detect_paths_ray

        return detect_paths_ray(
            files,
            model_dir,
            detection_spec(predictor.spec, args.largest_only),
            keep_crops=keep,
            **_ray_options(args, predictor),
        )
    results = detect_paths(
        files,
        predictor,
        every=args.every,
        frames=args.frames,
        workers=args.workers,
        batch_size=args.batch_size,
        keep_crops=keep,
        largest_only=args.largest_only,
    )
    # Start finding faces; the first batch waits for the model, so a model that fails to
    # load stops the command here, in one line, before any output.
    first = next(results, None)
    return itertools.chain([] if first is None else [first], results)


def _choose_sinks(args: argparse.Namespace, predictor, model_dir):
    """Where the results go, chosen once from the flags: the console (a table, or JSON with
    --json) and the --table file in its --format. The file is opened first: one that cannot
    be written stops the run before the console prints anything."""
    from unmask.inference.detect import JSON_SCHEMA_VERSION
    from unmask.inference.report import model_summary
    from unmask.inference.sinks import ConsoleTable, JsonDocument, Sinks, file_sink, named_errors

    summary = model_summary(predictor, model_dir)
    sinks = []
    if args.csv:
        label = f"--table {args.csv}"
        with named_errors(label):
            sinks.append(file_sink(args.csv, args.format, predictor.classes, summary, label))
    if args.json:
        sinks.append(JsonDocument(sys.stdout, JSON_SCHEMA_VERSION, summary))
    else:
        sinks.append(
            ConsoleTable(predictor.classes, sys.stdout, summary["id"], predictor.threshold)
        )
    return Sinks(sinks)


def _write_results(args: argparse.Namespace, results, sinks, predictor, n_files: int) -> dict:
    """Each result to the sinks and the picture folders as it comes (nothing is kept per
    file: memory stays flat); unreadable files are reported on stderr. -> the counts."""
    from tqdm import tqdm

    from unmask.data.imageio import printable

    # no bar when stderr is not a terminal: in a log file or a pipe joined with stdout its
    # carriage returns would land between the result rows
    quiet = args.quiet or n_files < 2 or not _is_terminal(sys.stderr)
    bar = tqdm(total=n_files, unit="file", disable=quiet, file=sys.stderr)
    counts = {"files": n_files, "ok": 0, "errors": 0, "fake": 0}
    try:
        for res in results:
            bar.update(1)
            res.file = printable(res.file)  # a name that is not UTF-8 still prints and saves
            if res.status == "error":
                counts["errors"] += 1
                tqdm.write(
                    f"unmask detect: skipped {res.file}: {res.reason}"
                    + (f" ({res.detail})" if res.detail else ""),
                    file=sys.stderr,
                )
            else:
                counts["ok"] += 1
                counts["fake"] += res.verdict == "fake"
            _write_pictures(args, res, predictor)
            with tqdm.external_write_mode(file=sys.stderr):  # rows never cut into the bar
                sinks.write(res)
    finally:
        bar.close()
    return counts


def _write_pictures(args: argparse.Namespace, res, predictor) -> None:
    """--annotate, --explain and --timeline for one result."""
    from pathlib import Path

    if args.annotate and res.status == "ok":
        from unmask.inference.render import annotate_file

        annotate_file(res, predictor.threshold, Path(args.annotate))
    if args.explain and res.status == "ok" and res.faces:
        from unmask.inference.explain import explain_all

        explain_all(res, predictor, Path(args.explain))
    if args.timeline and res.kind == "video" and res.faces:
        from unmask.inference.render import plot_timeline

        plot_timeline(res, predictor.threshold, Path(args.timeline))


def _ray_options(args, predictor) -> dict:
    """The Ray engine's options from the flags, the same for streamed results and shards."""
    from unmask.inference.detect import wants_landmarks

    return dict(
        device=args.device,
        threshold=predictor.threshold,
        every=args.every,
        frames=args.frames,
        workers=args.workers or 2,
        model_workers=args.model_workers,
        batch_size=args.batch_size,
        landmarks=wants_landmarks(predictor),
        tiles=tuple(predictor.needs.tiles),
        runtime=args.runtime,
    )


def _run_shards(args, files, model_dir, predictor) -> int:
    """`--shards DIR`: Ray workers write the per-face table as Parquet shards."""
    from pathlib import Path

    from unmask.cluster.detect import detect_to_parquet_shards
    from unmask.cluster.options import engine_session
    from unmask.data.tables import read_table
    from unmask.errors import UnmaskError
    from unmask.inference.detect import detection_spec

    if args.engine != "ray":
        raise UnmaskError("--shards are written by Ray workers: use it with --engine ray")
    out = Path(args.shards)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnmaskError(f"--shards {out}: must be a new or empty folder")
    with engine_session(args, num_cpus=(args.workers or 2) + 1):
        detect_to_parquet_shards(
            files,
            model_dir,
            detection_spec(predictor.spec, args.largest_only),
            out,
            predictor.classes,
            **_ray_options(args, predictor),
        )
    per_file = read_table(out).drop_duplicates("file")
    n_err = int((per_file["status"] == "error").sum())
    n_fake = int((per_file["file_verdict"] == "fake").sum())
    print(
        f"{len(files)} file(s): {len(per_file) - n_err} scored, {n_fake} fake, {n_err} "
        f"unreadable; per-face rows in {out}"
    )
    return 1 if n_err and n_err == len(per_file) else 0


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False
