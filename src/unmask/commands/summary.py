"""`unmask summary MODEL_DIR_OR_CONFIG [--input-size N]`."""

from __future__ import annotations

import argparse

HELP = "layer table, parameters, shapes and MACs of a CNN detector"
DESCRIPTION = """Describe a CNN detector: its layers with output shapes and parameter counts,
total/trainable parameters, input/output/embedding shapes and MACs per image.

The argument is a saved-model folder (model.json) or a training config (YAML).

examples:
  unmask summary configs/f3net.yaml
  unmask summary work/models/resnet18 --input-size 224
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="saved-model folder or training config YAML")
    p.add_argument("--input-size", type=int, default=None, help="image side (default: the model's)")
    p.add_argument("--depth", type=int, default=2, help="module nesting depth in the table")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override when the target is a YAML config")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from unmask.errors import UnmaskError

    target = Path(args.target)
    if target.is_dir():
        from unmask.inference.loader import load_predictor, predictor_kind

        pred = load_predictor(target)  # the one strict reader; refuses hostile folders
        if not predictor_kind(pred).network:
            raise UnmaskError(
                f"{target}: summary describes CNN models (kind torch), not {pred.saved.kind!r}"
            )
        model, size, name = pred.model, pred.input_size, pred.saved.label
        needs_lm = pred.needs.landmarks
    elif target.is_file():
        from unmask.config import load_config
        from unmask.training.config import TrainConfig
        from unmask.training.engine import detector_spec

        cfg = load_config(TrainConfig, target, overrides=args.overrides)
        spec = detector_spec(cfg)
        model = spec.build(cfg.data.num_classes)
        size, name, needs_lm = cfg.data.input_size, spec.name, spec.info.needs_landmarks
    else:
        raise UnmaskError(f"not found: {target}")
    from unmask.training.summary import format_summary, summarize

    s = summarize(
        model, args.input_size or size, depth=args.depth, name=name, needs_landmarks=needs_lm
    )
    print(json.dumps(s.to_dict(), indent=2) if args.json else format_summary(s))
    return 0
