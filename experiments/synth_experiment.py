"""Do synthesised fakes teach a detector to find real fakes? Re-run with

    python experiments/synth_experiment.py [--prepared work/prepared] [--skip-train]

(a) `configs/synth-experiment-a.yaml`: ResNet-18 on the prepared data's reals vs its real fakes.
(b) `configs/synth-experiment-b.yaml`: the same detector and budget on the same reals vs
    synthesised fakes only (self-blends + transposed-conv auto-encoder reconstructions), the
    manifest built by `unmask synth blend ... --keep real` then `unmask synth upsample ...`.
Both are scored on the prepared TEST split: every real test face against each real-fake
source of the test split (AUC, and recall of that source / accuracy on reals at the saved
model's threshold). The table is printed and written to `work/synth/experiment.md`.
`unmask eval` writes the project's standard report for each model to OUT/eval-a and OUT/eval-b.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def build_b(prepared: Path, out_root: Path, seed: int = 0) -> Path:
    from unmask.synth.pipeline import run_blend, run_upsample

    blend_dir, b_dir = out_root / "exp-b-blend", out_root / "exp-b"
    if not (blend_dir / "manifest.csv").is_file():
        run_blend(prepared, blend_dir, keep="real", seed=seed)
    if not (b_dir / "manifest.csv").is_file():
        run_upsample(blend_dir, b_dir, upsampler="transposed", size=64, steps=200, seed=seed)
    return b_dir / "manifest.csv"


def evaluate(model_dir: Path, prepared: Path) -> dict[str, dict[str, float]]:
    """Per-source scores on the prepared test split: reals vs each fake source."""
    import numpy as np

    from unmask.data.manifest import load_crop, load_landmarks, read_manifest
    from unmask.inference.loader import load_predictor
    from unmask.inference.predictor import p_fake
    from unmask.metrics import roc_auc

    pred = load_predictor(model_dir)
    df = read_manifest(prepared, split="test")
    scores = []
    for i in range(0, len(df), 64):
        part = df.iloc[i : i + 64]
        crops = [load_crop(p) for p in part["abs_path"]]
        lms = [load_landmarks(p) for p in part["abs_landmarks"]]
        scores.append(p_fake(pred.predict_proba(crops, lms)))
    df["score"] = np.concatenate(scores)
    real = df[df["label"] == "real"]
    out: dict[str, dict[str, float]] = {}
    for src, part in df[df["label"] != "real"].groupby("source"):
        y = np.r_[np.zeros(len(real)), np.ones(len(part))]
        s = np.r_[real["score"], part["score"]]
        out[str(src)] = {
            "n": int(len(part)),
            "auc": float(roc_auc(y, s)),
            "recall": float((part["score"] >= pred.threshold).mean()),
        }
    y = (df["label"] != "real").to_numpy().astype(int)
    out["ALL"] = {
        "n": int(y.sum()),
        "auc": float(roc_auc(y, df["score"].to_numpy())),
        "recall": float((df.loc[y == 1, "score"] >= pred.threshold).mean()),
    }
    out["real (accuracy)"] = {
        "n": int(len(real)),
        "auc": float("nan"),
        "recall": float((real["score"] < pred.threshold).mean()),
    }
    return out


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(results)
    sources = list(next(iter(results.values())))
    head = "| test source | n | " + " | ".join(f"{n} AUC | {n} recall" for n in names) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(names))]
    for s in sources:
        cells = []
        for n in names:
            r = results[n][s]
            cells += ["-" if r["auc"] != r["auc"] else f"{r['auc']:.3f}", f"{r['recall']:.3f}"]
        lines.append(f"| {s} | {results[names[0]][s]['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from unmask.config import load_config
    from unmask.training.config import TrainConfig
    from unmask.training.run import train

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--prepared", default="work/prepared")
    ap.add_argument("--out", default="work/synth")
    ap.add_argument("--skip-train", action="store_true", help="evaluate existing models only")
    ap.add_argument("--no-eval", action="store_true", help="skip `unmask eval` reports")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="for both configs")
    args = ap.parse_args(argv)
    prepared, out = Path(args.prepared), Path(args.out)
    build_b(prepared, out)
    results = {}
    for tag in ("a", "b"):
        cfg = load_config(
            TrainConfig, f"configs/synth-experiment-{tag}.yaml", overrides=args.overrides
        )
        model = Path(cfg.output)
        if not args.skip_train or not (model / "model.json").is_file():
            model = Path(train(cfg))
        results[f"({tag})"] = evaluate(model, prepared)
        if not args.no_eval:  # the project's standard report, per source, on the test split
            from unmask.cli import main as unmask_main

            unmask_main(
                [
                    "eval",
                    "--model",
                    str(model),
                    str(prepared),
                    "-o",
                    str(out / f"eval-{tag}"),
                    "--quiet",
                ]
            )
    text = table(results)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.md").write_text(text + "\n", encoding="utf-8")
    (out / "experiment.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
