"""`unmask crossval CONFIG --by source`: leave-one-source-out training and testing."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "leave-one-source-out: train without each source, test on it"
DESCRIPTION = """\
For each source of the config's manifest: train with that source excluded
(data.exclude_sources), then score every source (all rows of the held-out one, the test
split of the others). Prints and saves the matrix held-out source x scored source: AUC where
the scored rows hold real and fake, else the accuracy of the verdicts at the model's
threshold (detection rate). Writes OUT/crossval.{json,md,png} and one model per source.

example:
  unmask crossval configs/spectrum-logreg.yaml --by source -o work/crossval/spectrum-logreg
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="training config YAML (any detector)")
    p.add_argument("--by", default="source", choices=["source"], help="what to leave out")
    p.add_argument("-o", "--out", default=None, help="output folder (default runs/crossval/<name>)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. --set data.num_classes=3",
    )
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from unmask.config import load_config
    from unmask.evaluation.crossval import crossval, format_matrix
    from unmask.training.config import TrainConfig

    cfg = load_config(TrainConfig, args.config, args.set)
    out = Path(args.out) if args.out else Path("runs/crossval") / cfg.detector.name
    result = crossval(cfg, out, by=args.by, progress=not args.quiet)
    print(f"\nleave-one-source-out ({result['cell']}; * = held out):")
    print(format_matrix(result))
    print(f"\nwrote crossval.json, crossval.md, crossval.png to {out}")
    return 0
