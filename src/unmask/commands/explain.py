"""`unmask explain`: class activation maps for every face and every class."""

from __future__ import annotations

import argparse

HELP = "Grad-CAM / Grad-CAM++ / Score-CAM heatmaps for each face and class"
DESCRIPTION = """\
For each face found in the given images (or sampled video frames), write a PNG with the
face crop followed by one heatmap overlay per class (CNN models). For classical spectrum
models, write the face's azimuthal spectrum against the class means.

example:
  unmask explain --model runs/resnet18 photo.jpg -o out/explain --method gradcam++
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", "-m", default=None, help="model folder (default: shipped model)")
    p.add_argument("-o", "--out", required=True, help="output folder for PNGs")
    p.add_argument("--method", default="gradcam", choices=["gradcam", "gradcam++", "scorecam"])
    p.add_argument("--frames", type=int, default=4, help="frames sampled per video")
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import sys

    from unmask.data.imageio import printable
    from unmask.data.inputs import ensure_writable_dir
    from unmask.errors import UnmaskError
    from unmask.inference.detect import detect_paths, expand_inputs
    from unmask.inference.device import check_device
    from unmask.inference.explain import explain_all
    from unmask.inference.loader import load_predictor
    from unmask.inference.saved_model import default_model_dir

    if args.frames < 1:
        raise UnmaskError("--frames must be >= 1")
    device = check_device(args.device)
    from pathlib import Path

    missing = [p for p in args.paths if not Path(p).exists() and not Path(p).is_symlink()]
    if len(missing) == len(args.paths):  # nothing to explain: no output folder is made
        raise UnmaskError(f"input not found: {missing[0]}")
    files = list(expand_inputs(args.paths))
    if not files:  # as detect says it
        raise UnmaskError(f"no files found in {', '.join(map(str, args.paths))}")
    out = ensure_writable_dir(args.out)  # before the work, not after it
    predictor = load_predictor(args.model or default_model_dir(), device=device)
    n_written = n_err = 0
    for res in detect_paths(files, predictor, frames=args.frames, workers=1, keep_crops=True):
        res.file = printable(res.file)
        if res.status == "error":
            n_err += 1
            print(f"unmask explain: skipped {res.file}: {res.reason}", file=sys.stderr)
            continue
        if not res.faces:
            print(f"{res.file}: no face found")
            continue
        # a composite member by member (out/<member>/)
        for path in explain_all(res, predictor, out, method=args.method):
            n_written += 1
            print(path)
    print(f"{n_written} heatmap image(s) written to {out}")
    return 0 if n_written or not n_err else 1
