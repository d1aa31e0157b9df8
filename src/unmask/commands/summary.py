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
        from unmask.detectors.cnn import build_cnn
        from unmask.inference.saved_model import read_model_json

        meta = read_model_json(target)
        if meta.get("kind") != "torch":
            raise UnmaskError(
                f"{target}: summary describes CNN models (kind torch), not {meta.get('kind')!r}"
            )
        det = meta["detector"]
        model = build_cnn(det["name"], num_classes=len(meta["classes"]), **det.get("kwargs", {}))
        size = int(meta.get("input", {}).get("size", 224))
        name = det["name"]
    elif target.is_file():
        from unmask.config import load_config
        from unmask.detectors.cnn import build_cnn
        from unmask.training.config import TrainConfig
        from unmask.training.engine import detector_spec

        cfg = load_config(TrainConfig, target, overrides=args.overrides)
        name, kwargs = detector_spec(cfg)
        model = build_cnn(name, num_classes=cfg.data.num_classes, **kwargs)
        size = cfg.data.input_size
    else:
        raise UnmaskError(f"not found: {target}")
    from unmask.training.summary import format_summary, summarize

    s = summarize(model, input_size=args.input_size or size, depth=args.depth, name=name)
    print(json.dumps(s.to_dict(), indent=2) if args.json else format_summary(s))
    return 0
