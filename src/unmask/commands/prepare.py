"""`unmask prepare`: images/videos/folders/CSV -> face crops + manifest.csv."""

from __future__ import annotations

import argparse

HELP = "find and crop faces in images and videos; write crops, manifest.csv and splits"

DESCRIPTION = """\
Find the face in every image and video frame, cut a square crop around it and write
a manifest that every later stage (train, eval, synth) reads.

INPUT is one of:
  a folder laid out <root>/<source>/<label>/<files> or <root>/<label>/<files>
      (label: real, gan or edited; with the second layout source = the folder's name)
  a CSV with columns path,label (optional source, group, method); paths are relative
      to the CSV's folder
  one or more image/video files (label from their folder's name)
Images (JPEG, PNG, WEBP, BMP, TIFF, ...) are recognised by their content, not their
extension; videos (mp4, avi, mov, mkv, webm) give frames: --frames K evenly spaced
frames per video (default 16) or every Nth frame with --every N.

Output (-o OUT):
  crops/<source>/<label>/<id>.png   face crops (+ <id>.npy: 468 face-mesh landmarks)
  manifest.csv                      one row per crop, with its train/val/test split
  rejected.csv                      inputs (and video frames) that gave no crop, and why
  prepare.json, summary.csv         the crop settings used; the table printed at the end
A re-run with the same settings skips the work already done and writes the same manifest.

Splits are stratified by (label, source) and grouped: all crops of one group share a
split. A group is one input file (all frames of a video, all faces of a photo) or the
CSV's `group` column. --group-regex REGEX sets it from the file name instead: the first
capture group of REGEX, searched in the file name without extension, names the group
(within its source). Example: --group-regex '^(\\d+)' puts the FaceForensics++ videos
519.mp4 (original) and 519_515.mp4 (its deepfake) in group "519", so the fake and its
original are never split between train and test.

Examples:
  unmask prepare data/labels.csv -o work/prepared --group-regex '^(\\d+)'
  unmask prepare data/faces -o work/faces --size 224 --align --txt
"""


def _fraction_list(text: str) -> str:
    parts = [p for p in text.split(",") if p.strip()]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 3 numbers like 0.7,0.15,0.15, got {text!r}"
        ) from None
    if len(vals) != 3 or any(v < 0 for v in vals) or abs(sum(vals) - 1.0) > 1e-6:
        raise argparse.ArgumentTypeError(
            f"expected 3 non-negative numbers summing to 1 (train,val,test), got {text!r}"
        )
    return text


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="folder, CSV, or image/video files")
    p.add_argument("-o", "--out", required=True, help="output folder (must not be inside INPUT)")
    g = p.add_argument_group("cropping (saved as the PreprocessSpec)")
    g.add_argument(
        "--margin",
        type=float,
        default=1.3,
        help="crop side = MARGIN x the face box's larger side (default 1.3)",
    )
    g.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    g.add_argument("--align", action="store_true", help="rotate so the eyes are level")
    g.add_argument(
        "--remove-background",
        action="store_true",
        help="replace the background by mid grey (selfie segmentation)",
    )
    g.add_argument(
        "--all-faces", action="store_true", help="keep every face (default: only the largest)"
    )
    g.add_argument(
        "--min-score",
        type=float,
        default=0.5,
        help="face detector confidence threshold (default 0.5)",
    )
    g.add_argument(
        "--keep-whole",
        action="store_true",
        help="no face found: keep the whole image resized instead of rejecting it",
    )
    g.add_argument(
        "--max-pixels",
        type=int,
        default=100_000_000,
        help="refuse images larger than this many pixels (default 100000000)",
    )
    v = p.add_argument_group("videos")
    v.add_argument(
        "--every",
        type=_positive_int,
        default=0,
        metavar="N",
        help="take every Nth frame (overrides --frames)",
    )
    v.add_argument(
        "--frames",
        type=_positive_int,
        default=16,
        metavar="K",
        help="K evenly spaced frames per video (default 16)",
    )
    v.add_argument(
        "--group-regex",
        default=None,
        metavar="REGEX",
        help="group = first capture group of REGEX searched in the file name "
        "without extension, e.g. '^(\\d+)' (see above)",
    )
    s = p.add_argument_group("splits and output")
    s.add_argument(
        "--splits",
        type=_fraction_list,
        default="0.7,0.15,0.15",
        help="train,val,test fractions (default 0.7,0.15,0.15)",
    )
    s.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    s.add_argument(
        "--txt",
        action="store_true",
        help="also write train.txt/val.txt/test.txt: 'path label' with 0 real, 1 gan, 2 edited",
    )
    s.add_argument("--binary", action="store_true", help="with --txt: every fake is 1")
    s.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default 2)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    from unmask.cluster.options import add_engine_arguments

    add_engine_arguments(
        p, "manifest and rejected tables: manifest.csv (default) or manifest.parquet"
    )


def run(args: argparse.Namespace) -> int:
    import time

    from unmask.data.prepare import format_summary, prepare
    from unmask.data.spec import PreprocessSpec
    from unmask.errors import UnmaskError

    try:
        spec = PreprocessSpec(
            margin=args.margin,
            crop_size=args.size,
            align=args.align,
            remove_background=args.remove_background,
            faces="all" if args.all_faces else "largest",
            min_score=args.min_score,
            keep_whole=args.keep_whole,
            max_pixels=args.max_pixels,
        )
    except ValueError as exc:
        raise UnmaskError(str(exc)) from None
    if args.max_pixels < 1:
        raise UnmaskError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    inputs = args.inputs[0] if len(args.inputs) == 1 else args.inputs
    from unmask.cluster.options import engine_session

    executor = None
    if args.engine == "ray":
        from unmask.cluster.prepare import run_tasks_on_ray as executor
    t0 = time.perf_counter()
    with engine_session(args, num_cpus=max(args.workers, 1)):
        result = prepare(
            inputs,
            args.out,
            spec,
            splits=args.splits,
            seed=args.seed,
            every=args.every,
            frames=args.frames,
            group_regex=args.group_regex,
            workers=max(args.workers, 1),
            progress=not args.no_progress,
            txt=args.txt,
            binary=args.binary,
            fmt=args.format,
            executor=executor,
        )
    dt = time.perf_counter() - t0
    print(format_summary(result.summary))
    print(
        f"\n{result.n_inputs} inputs = {result.n_accepted} accepted + {result.n_rejected} "
        f"rejected; {result.n_faces} crops"
        + (f" ({result.n_reused} inputs reused from an earlier run)" if result.n_reused else "")
        + f"; {dt:.1f} s"
    )
    print(f"manifest: {result.manifest_path}")
    if result.n_rejected:
        print(f"rejected: {result.rejected_path}")
    return 0
