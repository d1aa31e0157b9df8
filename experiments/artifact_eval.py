"""Score native-pixel tile models and crop models on the same test rows, per source.

    python experiments/artifact_eval.py --manifest work/prepared/manifest.csv \
        --tile loso-celeba_gan=work/artifact/loso-celeba_gan ... \
        --crop default=src/unmask/assets/default_model --crop spectrum=work/artifact/spec-all \
        --perturb jpeg:90 --out work/artifact/eval-loso

Tile models: decode the row's `original`, perturb the WHOLE original (jpeg:90 = re-encode at
q90, as images on the web are), cut `cut_tiles(original, box, spec)` with the model's saved
TileSpec, softmax(mean of tile logits). Crop models (classical or CNN): the manifest's crop,
perturbed the same way, through `load_predictor`. Each model's own threshold (chosen on its
val split) gives the verdicts. Per model and perturbation: AUC of every synthesised source
against all real test rows, its detection rate, and the false-positive rate per real
source. Also times the detector alone (img/s). Writes OUT/results.json and OUT/tables.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _pairs(items: list[str]) -> list[tuple[str, Path]]:
    out = []
    for it in items:
        name, _, path = it.partition("=")
        out.append((name, Path(path)))
    return out


def load_tile_model(model_dir: Path):
    import torch
    from safetensors.torch import load_file

    from unmask.detectors.registry import create_detector
    from unmask.modelfile import read_saved_model, weights_path

    if model_dir.suffix == ".ckpt":  # a training checkpoint (screening): DIR/checkpoints/X.ckpt
        ckpt = torch.load(model_dir, map_location="cpu", weights_only=True)
        hp = ckpt["hyper_parameters"]
        cfg = hp.get("config") or hp.get("cfg")
        from unmask.config import from_dict
        from unmask.training.config import TrainConfig
        from unmask.training.tile_data import tile_spec

        cfg = cfg if isinstance(cfg, TrainConfig) else from_dict(TrainConfig, cfg)
        kw = dict(cfg.detector.kwargs)
        model = create_detector(cfg.detector.name, num_classes=cfg.data.num_classes, **kw)
        pre = "model."
        sd = {k[len(pre) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(pre)}
        model.load_state_dict(sd)
        torch.set_grad_enabled(False)
        return model.eval(), tile_spec(cfg), 0.5
    saved = read_saved_model(model_dir)
    model = create_detector(
        saved.detector.name, num_classes=len(saved.classes), **saved.detector.kwargs
    )
    model.load_state_dict(load_file(weights_path(model_dir)))
    torch.set_grad_enabled(False)
    return model.eval(), saved.input.tiles, saved.threshold


def tile_scores(model, tiles: np.ndarray, batch_faces: int = 32) -> tuple[np.ndarray, float]:
    """P(fake) per face from (N, K, S, S, 3) uint8 tiles; and faces/s of the network alone."""
    import torch

    from unmask.metrics import p_fake
    from unmask.training.tile_data import _normalize

    out, t_net = [], 0.0
    for i in range(0, len(tiles), batch_faces):
        x = torch.from_numpy(np.stack([_normalize(t) for t in tiles[i : i + batch_faces]]))
        t0 = time.perf_counter()
        logits = model(x)
        t_net += time.perf_counter() - t0
        out.append(p_fake(torch.softmax(logits, 1).numpy()))
    return np.concatenate(out), len(tiles) / max(t_net, 1e-9)


def rows_for(manifest: str, split: str, cap: int, seed: int):
    from unmask.data.manifest import read_manifest
    from unmask.training.tile_data import cap_per_source, with_originals

    df = read_manifest(manifest, split=split)
    df = df[df["label"].isin(["real", "gan"]) & (df["frame"].astype(int) < 0)]
    df = cap_per_source(df.reset_index(drop=True), cap, seed)
    return with_originals(df)


def cut_all(df, spec, perturbation) -> np.ndarray:
    from tqdm.auto import tqdm

    from unmask.data.extract import decode_original, row_box
    from unmask.data.tiles import cut_tiles
    from unmask.evaluation.perturb import apply

    out = []
    for i, row in enumerate(tqdm(df.to_dict("records"), desc=f"tiles {perturbation.name}")):
        img = apply(decode_original(row), perturbation, seed=i)
        out.append(cut_tiles(img, row_box(row), spec))
    return np.stack(out)


def cached_tiles(df, spec, perturbation, args) -> np.ndarray:
    """`cut_all`, stored under --cache keyed by rows, spec and perturbation."""
    import hashlib

    if not args.cache:
        return cut_all(df, spec, perturbation)
    key = "|".join([*df["path"], repr(spec), perturbation.name])
    path = Path(args.cache) / f"tiles-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    tiles = cut_all(df, spec, perturbation)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, tiles, allow_pickle=False)
    return tiles


def crops_all(df, perturbation) -> list[np.ndarray]:
    from unmask.data.manifest import load_crop
    from unmask.evaluation.perturb import apply

    return [apply(load_crop(p), perturbation, seed=i) for i, p in enumerate(df["abs_path"])]


def table(df, score: np.ndarray, thr: float) -> dict:
    from unmask.metrics import roc_auc

    real = (df["label"] == "real").to_numpy()
    res: dict = {"threshold": thr, "gan": {}, "real_fpr": {}}
    y = (~real).astype(int)
    res["auc_all"] = roc_auc(y, score) if 0 < y.sum() < len(y) else None
    for src in sorted(set(df.loc[~real, "source"])):
        m = (df["source"] == src).to_numpy() & ~real
        yy = np.r_[np.zeros(real.sum()), np.ones(m.sum())]
        ss = np.r_[score[real], score[m]]
        res["gan"][src] = {
            "auc": roc_auc(yy, ss),
            "detect": float((score[m] >= thr).mean()),
            "n": int(m.sum()),
        }
    for src in sorted(set(df.loc[real, "source"])):
        m = (df["source"] == src).to_numpy() & real
        res["real_fpr"][src] = {"fpr": float((score[m] >= thr).mean()), "n": int(m.sum())}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="work/prepared/manifest.csv")
    ap.add_argument("--split", default="test")
    ap.add_argument("--tile", nargs="*", default=[], help="NAME=DIR tile models")
    ap.add_argument("--crop", nargs="*", default=[], help="NAME=DIR crop models")
    ap.add_argument("--perturb", nargs="*", default=["jpeg:90"])
    ap.add_argument("--cap", type=int, default=0, help="rows per (source, label), 0: all")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default="", help="folder for cut test tiles (.npy), reused")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from unmask.evaluation.perturb import parse_perturbations

    perts = [p for p in parse_perturbations(args.perturb) if p.kind != "none" or not args.perturb]
    df = rows_for(args.manifest, args.split, args.cap, 0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"n_rows": len(df), "models": {}}
    tile_models = {n: load_tile_model(d) for n, d in _pairs(args.tile)}
    for p in perts:
        cache: dict = {}
        for name, (model, spec, thr) in tile_models.items():
            if spec not in cache:
                cache[spec] = cached_tiles(df, spec, p, args)
            score, speed = tile_scores(model, cache[spec])
            r = table(df, score, thr)
            r["faces_per_s_network"] = speed
            results["models"].setdefault(name, {})[p.name] = r
            print(name, p.name, json.dumps({k: v for k, v in r.items() if k != "real_fpr"}))
        if args.crop:
            from unmask.inference.loader import load_predictor
            from unmask.inference.predictor import p_fake

            crops = crops_all(df, p)
            for name, d in _pairs(args.crop):
                pred = load_predictor(d)
                t0 = time.perf_counter()
                proba = np.concatenate(
                    [pred.predict_proba(crops[i : i + 32]) for i in range(0, len(crops), 32)]
                )
                speed = len(crops) / (time.perf_counter() - t0)
                r = table(df, p_fake(proba), float(pred.threshold))
                r["faces_per_s_model"] = speed
                results["models"].setdefault(name, {})[p.name] = r
                print(name, p.name, json.dumps({k: v for k, v in r.items() if k != "real_fpr"}))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "tables.md").write_text(markdown(results))
    plot(results, out / "auc.png")
    print(markdown(results))


def markdown(results: dict) -> str:
    lines = []
    for name, per in results["models"].items():
        for pname, r in per.items():
            gan = ", ".join(
                f"{s} AUC {v['auc']:.3f} det {v['detect']:.2f}" for s, v in r["gan"].items()
            )
            fpr = ", ".join(f"{s} {v['fpr']:.2f}" for s, v in r["real_fpr"].items())
            lines.append(f"| {name} | {pname} | {gan} | FPR: {fpr} | thr {r['threshold']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Bars: AUC per synthesised source, one group per (model, perturbation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(m, p) for m, per in results["models"].items() for p in per]
    if not keys:
        return
    sources = sorted({s for m, p in keys for s in results["models"][m][p]["gan"]})
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(keys)), 3.5))
    w = 0.8 / max(1, len(sources))
    for j, s in enumerate(sources):
        vals = [results["models"][m][p]["gan"].get(s, {}).get("auc", np.nan) for m, p in keys]
        ax.bar(np.arange(len(keys)) + j * w, vals, w, label=s)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.axhline(0.9, color="green", lw=0.8, ls=":")
    ax.set_xticks(np.arange(len(keys)) + 0.4 - w / 2)
    ax.set_xticklabels([f"{m}\n{p}" for m, p in keys], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AUC vs all real test faces")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
