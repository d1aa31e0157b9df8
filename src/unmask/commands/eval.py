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
    p.add_argument(
        "--model", "-m", default=None, help="saved model folder (default: the shipped model)"
    )
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
    p.add_argument(
        "--device",
        default=None,
        help="for CNN models: cpu, cuda (default cpu; with --engine ray: cuda when the "
        "cluster has GPUs)",
    )
    from unmask.inference.onnx_runtime import add_runtime_argument

    add_runtime_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    from unmask.cluster.options import add_engine_arguments

    add_engine_arguments(p, "a folder DATA's prepared manifest: csv (default) or parquet")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes (local) or actors (ray) that crop a folder DATA; with --engine ray "
        "also the model actors (default 2)",
    )


def run(args: argparse.Namespace) -> int:
    from unmask.data.checks import check_rows
    from unmask.data.inputs import ensure_writable_dir
    from unmask.errors import UnmaskError
    from unmask.evaluation.perturb import parse_perturbations
    from unmask.evaluation.report import evaluate, load_eval_rows, perturbation_tables, write_report
    from unmask.inference.device import check_device
    from unmask.inference.loader import load_predictor
    from unmask.inference.saved_model import default_model_dir

    if args.batch_size < 1 or args.bootstrap < 0:
        raise UnmaskError("--batch-size must be >= 1 and --bootstrap >= 0")
    from unmask.inference.onnx_runtime import resolve_runtime

    if args.device is not None:
        check_device(args.device)
    resolve_runtime(args.runtime, args.device or "cpu")  # a bad choice: one line, no work
    args.model = str(args.model or default_model_dir())
    perturbations = parse_perturbations(args.perturb)
    predictor = load_predictor(args.model, device=args.device or "cpu", runtime=args.runtime)
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
    if not data.exists():  # before the report folder is made: no empty folder left behind
        raise UnmaskError(f"data not found: {data}")
    ensure_writable_dir(out, "report folder")  # before the work, not after it
    import contextlib

    from unmask.cluster.options import engine_session

    stack = contextlib.ExitStack()
    stack.enter_context(engine_session(args, num_cpus=max(args.workers, 1)))
    score_fn = None
    options = {"fmt": args.format, "workers": max(args.workers, 1)}
    if args.engine == "ray":
        from unmask.cluster.eval import ray_scorer
        from unmask.cluster.prepare import run_tasks_on_ray

        options["executor"] = run_tasks_on_ray
        score_fn = ray_scorer(args.model, args.device, max(args.workers, 1), args.runtime)
    df = load_eval_rows(
        data, split, predictor.spec, out, progress=not args.quiet, prepare_options=options
    )
    df = check_rows(df, str(data))  # unknown labels and duplicated rows: warned, dropped
    cache = out / ".cache" / "features"  # never inside the data set (it may be read-only)
    drivers: dict = {}  # composites: the member that drove each row's score
    with stack:
        report, proba = evaluate(
            predictor,
            df,
            perturbations,
            batch_size=args.batch_size,
            n_boot=args.bootstrap,
            seed=args.seed,
            progress=not args.quiet,
            feature_cache=cache,
            score_fn=score_fn,
            drivers=drivers,
        )
    report["data"] = str(data)
    report["split"] = args.split if split else "all"
    report["model"]["path"] = str(args.model)
    written = write_report(report, df, proba, out, drivers)
    print(perturbation_tables(report))
    print(f"\nwrote {', '.join(p.name for p in written)} to {out}")
    return 0
