"""`unmask compose MEMBER_DIR... --val MANIFEST -o OUT`: a composite of saved models."""

from __future__ import annotations

import argparse

HELP = "combine saved models into one composite model, fitted on a validation split"
DESCRIPTION = """Combine saved models (each scores faces from its own input: a resized crop,
landmarks or native-pixel tiles) into one composite model. Each member's P(fake) is
Platt-calibrated on the manifest's val split, then fused by --rule: max (the highest
calibrated score) or logistic (stacking); auto picks the rule with the higher mean AUC
on val sources held out of the fusion fit (with fakes of two or more sources; else the
lower 5-fold cross-validated log-loss). The threshold is chosen on val to protect real
photos: the best balanced accuracy among thresholds that flag at most --max-fpr (5%) of the
reals of every real source, each source alike (--max-fpr 0: Youden's J); the test split is
never read. Every face's result names the member that drove its score (`driver`).

--size-calibrate NAME=200,400 calibrates that member per face size instead (crop-box side
in native pixels: below 200, 200-400, 400 and up), each bin on its own val faces with
balanced classes: a native-pixel detector's evidence depends on how many pixels a face has.

examples:
  unmask compose work/models/artifact work/models/blend --names artifact,blend \\
      --val work/prepared --rule auto -o work/models/combo
  unmask compose work/models/artifact work/models/blend --names artifact,blend \
      --val work/prepared --size-calibrate artifact=200,400 -o work/models/combo-sized
  unmask detect photo.jpg --model work/models/combo
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("members", nargs="+", metavar="MEMBER_DIR", help="saved-model folders")
    p.add_argument("--names", help="comma-separated member names (default: folder names)")
    p.add_argument("--val", required=True, help="manifest (CSV or folder) with a val split")
    p.add_argument("--rule", choices=("max", "logistic", "auto"), default="auto")
    p.add_argument("-o", "--output", required=True, help="the composite model folder (new)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--max-fpr",
        type=float,
        default=0.05,
        help="most reals of any one val source the threshold may flag (0: Youden's J)",
    )
    p.add_argument("--id", default="", help="the model's id in model.json (default: folder name)")
    p.add_argument(
        "--size-calibrate",
        action="append",
        default=[],
        metavar="NAME=EDGES",
        help="calibrate member NAME per face size, bins cut at EDGES (crop-box side, px, "
        "comma-separated, increasing), e.g. artifact=200,400 (repeatable)",
    )
    p.add_argument(
        "--size-mode",
        choices=("platt", "abstain"),
        default="platt",
        help="per size bin: platt (its own calibration, classes balanced) or abstain (the "
        "member's calibration where val shows evidence in the bin, silent elsewhere)",
    )


def run(args: argparse.Namespace) -> int:
    from unmask.errors import UnmaskError
    from unmask.evaluation.compose import compose_models

    if args.batch_size < 1:
        raise UnmaskError("--batch-size must be >= 1")
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    size_edges = dict(parse_size_edges(v) for v in args.size_calibrate)
    out = compose_models(
        args.members,
        names,
        args.val,
        args.rule,
        args.output,
        batch_size=args.batch_size,
        model_id=args.id,
        size_edges=size_edges,
        size_mode=args.size_mode,
        max_fpr=args.max_fpr,
    )
    from unmask.modelfile import read_saved_model

    m = read_saved_model(out)
    print(
        f"saved composite: {out} ({m.fusion.rule} of {', '.join(x.name for x in m.fusion.members)},"
        f" threshold {m.threshold:.4f}, val AUC {m.metrics['val'].get('auc')})"
    )
    return 0


def parse_size_edges(text: str) -> tuple[str, tuple[float, ...]]:
    """`NAME=E1,E2,...` -> (NAME, (E1, E2, ...)); one clear error line otherwise."""
    import math

    from unmask.errors import UnmaskError

    name, sep, rest = text.partition("=")
    try:
        edges = tuple(float(v) for v in rest.split(",")) if sep and rest.strip() else ()
    except ValueError:
        edges = ()
    ok = edges and all(math.isfinite(e) and e > 0 for e in edges)
    if not (name.strip() and ok and all(b > a for a, b in zip(edges, edges[1:], strict=False))):
        raise UnmaskError(
            f"--size-calibrate {text[:60]!r}: expected NAME=EDGES with increasing positive "
            "numbers, e.g. artifact=200,400"
        )
    return name.strip(), edges
