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
    from pathlib import Path

    from unmask.jsonio import dumps
    from unmask.modelfile import (
        CARD_FILE,
        default_model_dir,
        model_to_json,
        read_saved_model,
    )

    d = Path(args.model) if args.model else default_model_dir()
    model = read_saved_model(d)  # the one strict reader: a broken folder fails in one line
    if args.json:
        print(dumps(model_to_json(model), indent=2))
        return 0
    card = d / CARD_FILE
    if card.is_file() and not card.is_symlink():
        print(card.read_text(encoding="utf-8"))
        return 0
    print(
        f"model: {d}\ndetector: {model.label} ({model.kind})\n"
        f"classes: {', '.join(model.classes)}\n"
        f"threshold: {model.threshold:.4f} ({model.threshold_rule})"
    )
    if model.fusion is not None:
        f = model.fusion
        print(f"fusion: {f.rule} of " + ", ".join(m.name for m in f.members))
    if model.input is not None and model.input.tiles is not None:
        t = model.input.tiles
        print(f"input: {t.count} native-pixel tiles of {t.size} px per {t.region}")
    if model.metrics:
        print("metrics:", dumps(model.metrics, indent=2))
    return 0
