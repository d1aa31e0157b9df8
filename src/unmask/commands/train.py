"""`unmask train CONFIG.yaml [--set key=value ...] [-o OUT]`."""

from __future__ import annotations

import argparse

HELP = "train a detector from a YAML config (classical or CNN)"
DESCRIPTION = """Train a detector described by a YAML config (see configs/*.yaml).

Precedence: defaults < YAML < -o < --set. The result is one saved-model folder
(model.json + weights.safetensors) that `unmask eval`, `detect` and `serve` load.

examples:
  unmask train configs/resnet18.yaml
  unmask train configs/resnet18.yaml --set trainer.max_epochs=2 --set data.max_per_class=200
  unmask train configs/f3net.yaml -o work/models/f3net --set trainer.devices=2 \\
      --set trainer.strategy=ddp
  unmask train configs/resnet18.yaml --set trainer.resume=OUT/checkpoints/last.ckpt
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML training config")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, dotted for sections (repeatable), e.g. optim.lr=3e-4",
    )
    p.add_argument("-o", "--output", help="saved-model folder (overrides `output`)")


def run(args: argparse.Namespace) -> int:
    from unmask.config import load_config
    from unmask.training.config import TrainConfig
    from unmask.training.run import train

    extra = {"output": args.output} if args.output else None
    cfg = load_config(TrainConfig, args.config, overrides=args.overrides, extra=extra)
    out = train(cfg)
    import os

    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0:
        print(f"saved model: {out}")
    return 0
