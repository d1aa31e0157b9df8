"""`unmask models` / `unmask info`: what a model is, how it was trained, how well it does."""

from __future__ import annotations

import argparse

HELP = "show a model's card: detector, training data, per-source metrics, threshold"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="model folder (default: the model that ships with unmask)",
    )
    p.add_argument("--json", action="store_true", help="print model.json")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from unmask.inference.saved_model import default_model_dir, read_model_json

    d = Path(args.model) if args.model else default_model_dir()
    meta = read_model_json(d)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    card = d / "card.md"
    if card.is_file():
        print(card.read_text(encoding="utf-8"))
    else:
        print(
            f"model: {d}\ndetector: {meta['detector']} ({meta['kind']})\n"
            f"classes: {', '.join(meta['classes'])}\nthreshold: {meta.get('threshold')}"
        )
        if meta.get("metrics"):
            print("metrics:", json.dumps(meta["metrics"], indent=2))
    return 0
