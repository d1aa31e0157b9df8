"""`unmask eval`: metrics of a saved model on a manifest or a folder, pooled and per source."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate a saved model: metrics pooled and per source, robustness to perturbations"
DESCRIPTION = """\
Evaluate a saved model (classical or CNN) on labelled data.

DATA is a manifest (manifest.csv or its folder; split `test` by default) or a folder of
images laid out <source>/<label>/ or <label>/, which is first cropped with the model's own
preprocessing spec into OUT/prepared (re-runs reuse the crops).

Binary view: gan and edited count as fake; score = P(fake) = 1 - P(real); verdict fake when
score >= the model's threshold. Reported pooled, per source (a source with one class gets
accuracy = detection rate and AUC n/a) and per video (mean frame score per group).

Writes OUT/report.json, report.md, scores.csv, roc.png, confusion.png, hist.png.

examples:
  unmask eval --model work/models/dct-ridge work/prepared
  unmask eval --model work/models/dct-ridge work/prepared --perturb jpeg:90,70,50 blur:1,2
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="manifest.csv, its folder, or a folder <source>/<label>/*")
    p.add_argument("--model", "-m", required=True, help="saved model folder")
    p.add_argument(
        "--split",
        default="test",
        help="manifest split to evaluate (default test; 'all' for every row)",
    )
    p.add_argument(
        "--perturb",
        nargs="*",
        default=[],
        metavar="KIND:V1,V2",
        help="jpeg:90,70,50 blur:1,2 resize:0.5 noise:0.02 (one table each)",
    )
    p.add_argument(
        "-o", "--out", default=None, help="report folder (default runs/eval/<model>-<data>)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (0: none)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="for CNN models: cpu, cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from unmask.evaluation.perturb import parse_perturbations
    from unmask.evaluation.report import evaluate, load_eval_rows, perturbation_tables, write_report
    from unmask.inference.predictor import load_predictor

    perturbations = parse_perturbations(args.perturb)
    predictor = load_predictor(args.model, device=args.device)
    data = Path(args.data)
    out = (
        Path(args.out)
        if args.out
        else Path("runs/eval")
        / (
            f"{Path(args.model).resolve().name}-{data.resolve().stem if data.is_file() else data.resolve().name}"
        )
    )
    split = None if args.split == "all" else args.split
    df = load_eval_rows(data, split, predictor.spec, out, progress=not args.quiet)
    is_manifest = data.suffix.lower() == ".csv" or (data / "manifest.csv").is_file()
    root = (
        (data.parent if data.suffix.lower() == ".csv" else data)
        if is_manifest
        else out / "prepared"
    )
    cache = root / ".cache" / "features"
    report, proba = evaluate(
        predictor,
        df,
        perturbations,
        batch_size=args.batch_size,
        n_boot=args.bootstrap,
        seed=args.seed,
        progress=not args.quiet,
        feature_cache=cache,
    )
    report["data"] = str(data)
    report["split"] = args.split if split else "all"
    report["model"]["path"] = str(args.model)
    written = write_report(report, df, proba, out)
    print(perturbation_tables(report))
    print(f"\nwrote {', '.join(p.name for p in written)} to {out}")
    return 0
