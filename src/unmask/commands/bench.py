"""`unmask bench DATA --model M...`: per-source comparison of models, one protocol."""

from __future__ import annotations

import argparse

HELP = "compare models source by source (AUC+CI, TPR at low FPR, calibration), leave-one-source-out"
DESCRIPTION = """Score a labelled data set (a manifest, or a folder laid out <source>/<label>/)
with one or more saved models and report, for every source of the evaluated split: AUC with
a bootstrap 95% CI, TPR at 1% and 5% FPR, expected calibration error, and the detection and
false-positive rates at the model's own threshold. A source with fakes only is compared with
the reals of every source; a source with reals only reports false positives.

Leave-one-source-out in one command:
  - a model path may contain {source}: each source is scored by the model trained without
    it (`unmask crossval CONFIG -o DIR` writes DIR/<source>/model);
  - a composite model's calibration, fusion rule and threshold are refitted on the val rows
    of every other source (--no-refit keeps the saved fusion).
Writes OUT/bench.json, bench.md, bench.png (per-source AUC with CIs) and scores.csv.

examples:
  unmask bench work/prepared --model fused=work/models/fused --model default=DEFAULT -o work/bench
  unmask bench work/prepared --model 'artifact=work/crossval/artifact/{source}/model' -o work/bench-loso
  unmask bench my_photos/ --model work/models/fused --perturb jpeg:90 -o work/bench-mine
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="manifest (CSV or folder) or a <source>/<label>/ image folder")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]PATH[|FALLBACK]",
        help="a saved model (repeat to compare); DEFAULT is the shipped model; PATH may hold "
        "{source}, FALLBACK scores the sources without a {source} folder",
    )
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument(
        "--perturb",
        default=None,
        metavar="KIND:LEVEL",
        help="e.g. jpeg:90 applied to every image first",
    )
    p.add_argument("--no-refit", action="store_true", help="keep a composite's saved fusion")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the CIs")
    p.add_argument(
        "--max-per-source",
        type=int,
        default=0,
        metavar="N",
        help="at most N rows per (source, label) of each split, seeded (default 0: all)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from unmask.errors import UnmaskError
    from unmask.evaluation.bench import BenchModel, bench, format_bench, parse_models
    from unmask.evaluation.perturb import NONE, parse_perturbations

    if args.bootstrap < 0 or args.max_per_source < 0:
        raise UnmaskError("--bootstrap and --max-per-source must be >= 0")
    models = parse_models(args.model or ["DEFAULT"])
    from unmask.inference.saved_model import default_model_dir

    models = [
        BenchModel(m.name if m.path != m.name else "default", str(default_model_dir()))
        if m.path == "DEFAULT"
        else m
        for m in models
    ]
    pert = NONE
    if args.perturb and args.perturb.strip().lower() != "none":
        ps = parse_perturbations([args.perturb])[1:]  # [0] is always the clean run
        if len(ps) != 1:
            raise UnmaskError("--perturb takes one perturbation, e.g. jpeg:90")
        pert = ps[0]
    result = bench(
        models,
        args.data,
        args.out,
        split=args.split,
        perturbation=pert,
        refit=not args.no_refit,
        n_boot=args.bootstrap,
        progress=not args.quiet,
        max_per_source=args.max_per_source,
    )
    print(format_bench(result))
    print(f"\nwrote bench.json, bench.md, bench.png, scores.csv to {args.out}")
    return 0
