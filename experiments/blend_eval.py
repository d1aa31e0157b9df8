"""Score saved CNN models on a manifest's test split and write the blend-detector tables.

    python experiments/blend_eval.py work/prepared \
        --model pretrained=work/models/blend-lite0 --model scratch=work/models/blend-lite0-scratch \
        --model default=src/unmask/assets/default_model --perturb jpeg:90 -o work/blend/eval

Every model scores the same test rows (the crops `unmask prepare` wrote), clean and under each
perturbation (`unmask.evaluation.perturb.apply`, as `unmask eval --perturb` does), with the
model's own input size and normalisation. Tables, per model and perturbation:

- per edited source: AUC of that source's edited rows against THE SAME source's reals (ffpp
  crops split by manipulation method; yonsei splices by difficulty pooled), 95% bootstrap CI
  (stratified, 1000 resamples);
- FaceForensics++ videos at frame level (every face crop a row) and at video level (SBI's
  rule: mean over frames of the max P(fake) over faces in the frame; one score per video);
- fully synthesised sources (no reals of their own): AUC against all test reals pooled, and
  the share flagged at the model's validation threshold.

Writes OUT/scores.csv (one row per crop, model and perturbation), OUT/tables.md, tables.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

EDITED_GROUPS = ("ffpp_crops", "lfw_faceswap", "yonsei")
GAN_SOURCES = ("celeba_gan", "generated_photos", "sdfd")
VIDEO_SOURCE = "faceforensics"


def load_model(model_dir: Path):
    """Rebuild a saved torch model from model.json + weights.safetensors (no code run)."""
    import torch
    from safetensors.torch import load_file

    from unmask.detectors.cnn import build_cnn
    from unmask.modelfile import read_saved_model, weights_path

    saved = read_saved_model(model_dir)
    det = saved.detector
    model = build_cnn(det.name, num_classes=len(saved.classes), pretrained=False, **det.kwargs)
    model.load_state_dict(load_file(str(weights_path(model_dir))), strict=True)
    torch.set_grad_enabled(False)
    return model.eval(), saved


def score(model, saved, crops: list[np.ndarray], batch: int = 32) -> tuple[np.ndarray, float]:
    """P(fake) per crop and the model-only throughput (img/s, preprocessing excluded)."""
    import torch

    from unmask.metrics import p_fake
    from unmask.training.augment import resize_normalize

    inp = saved.input
    size, mean, std = inp.size, inp.mean, inp.std
    out, model_s = [], 0.0
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(
            np.stack([resize_normalize(c, size, mean, std) for c in crops[i : i + batch]])
        )
        t = time.perf_counter()
        with torch.inference_mode():
            proba = torch.softmax(model(x).float(), 1)
        model_s += time.perf_counter() - t
        out.append(p_fake(proba.numpy()))
    return np.concatenate(out), len(crops) / max(model_s, 1e-9)


def auc_ci(y: np.ndarray, s: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """AUC with a stratified bootstrap 95% CI; n of each class. A resample is the same
    rows weighted by how often it drew them, scored by the one AUC kernel."""
    from unmask.metrics import roc_auc

    y = np.asarray(y).astype(int)
    s = np.asarray(s, dtype=np.float64)
    pos, neg = s[y == 1], s[y == 0]
    res = {"n_fake": int(len(pos)), "n_real": int(len(neg)), "auc": None, "lo": None, "hi": None}
    if len(pos) == 0 or len(neg) == 0:
        return res
    labels = np.r_[np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)]
    scores = np.r_[pos, neg]
    res["auc"] = roc_auc(labels, scores)
    if len(pos) > 1 and len(neg) > 1:
        rng = np.random.default_rng(seed)
        # draws in the chunks the earlier pairwise version used, so seeded CIs are unchanged
        chunk = max(1, 4_000_000 // (len(pos) * len(neg)))
        boots = []
        for start in range(0, n_boot, chunk):
            b = min(chunk, n_boot - start)
            ip = rng.integers(0, len(pos), (b, len(pos)))
            ineg = rng.integers(0, len(neg), (b, len(neg)))
            for rp, rn in zip(ip, ineg, strict=True):
                w = np.r_[np.bincount(rp, minlength=len(pos)), np.bincount(rn, minlength=len(neg))]
                boots.append(roc_auc(labels, scores, sample_weight=w))
        res["lo"], res["hi"] = (float(v) for v in np.percentile(boots, [2.5, 97.5]))
    return res


def video_scores(df) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """SBI's video rule: max over faces in a frame, then mean over frames."""
    per_frame = df.groupby(["original", "frame"]).agg(s=("score", "max"), y=("y", "first"))
    per_video = per_frame.groupby(level=0).agg(s=("s", "mean"), y=("y", "first"))
    return per_video["y"].to_numpy(), per_video["s"].to_numpy(), list(per_video.index)


def tables(df, thresholds: dict[str, float]) -> list[dict]:
    rows = []
    for (model, pert), d in df.groupby(["model", "perturb"], sort=False):

        def add(name, sub, level="frame", model=model, pert=pert):
            r = auc_ci(sub["y"].to_numpy(), sub["score"].to_numpy())
            rows.append({"model": model, "perturb": pert, "set": name, "level": level, **r})

        for src in EDITED_GROUPS:
            s = d[d.source == src]
            add(src, s)
            if src == "ffpp_crops":
                for method in sorted(s.loc[s.y == 1, "method"].unique()):
                    short = method.replace("FF++ ", "").split(" (")[0]
                    add(f"ffpp_crops:{short}", s[(s.y == 0) | (s.method == method)])
        v = d[d.source == VIDEO_SOURCE]
        if len(v):
            add(VIDEO_SOURCE, v, "frame")
            yv, sv, _ = video_scores(v)
            r = auc_ci(yv, sv)
            rows.append(
                {"model": model, "perturb": pert, "set": VIDEO_SOURCE, "level": "video", **r}
            )
        reals = d[d.y == 0]
        for src in GAN_SOURCES:
            g = d[d.source == src]
            r = auc_ci(np.r_[np.zeros(len(reals)), np.ones(len(g))], np.r_[reals.score, g.score])
            r["flagged"] = float((g.score >= thresholds[model]).mean()) if len(g) else None
            rows.append(
                {
                    "model": model,
                    "perturb": pert,
                    "set": f"{src} (vs all reals)",
                    "level": "frame",
                    **r,
                }
            )
        r = auc_ci(d["y"].to_numpy(), d["score"].to_numpy())
        rows.append(
            {"model": model, "perturb": pert, "set": "all test rows", "level": "frame", **r}
        )
    return rows


def markdown(rows: list[dict], models: list[str], perts: list[str]) -> str:
    def cell(r):
        if r is None or r["auc"] is None:
            return "n/a"
        ci = f" [{r['lo']:.2f}, {r['hi']:.2f}]" if r["lo"] is not None else ""
        return f"{r['auc']:.3f}{ci}"

    keys = []
    for r in rows:
        k = (r["set"], r["level"])
        if k not in keys:
            keys.append(k)
    index = {(r["model"], r["perturb"], r["set"], r["level"]): r for r in rows}
    cols = [(m, p) for p in perts for m in models]
    lines = ["| set | level | n fake/real | " + " | ".join(f"{m} {p}" for m, p in cols) + " |"]
    lines.append("|" + "---|" * (3 + len(cols)))
    for s, lvl in keys:
        first = next(index[(m, p, s, lvl)] for m, p in cols if (m, p, s, lvl) in index)
        vals = [cell(index.get((m, p, s, lvl))) for m, p in cols]
        lines.append(
            f"| {s} | {lvl} | {first['n_fake']}/{first['n_real']} | " + " | ".join(vals) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    import pandas as pd
    from tqdm import tqdm

    from unmask.data.manifest import load_crop, read_manifest
    from unmask.evaluation.perturb import apply, parse_perturbations

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="manifest.csv or its folder")
    ap.add_argument("--model", action="append", default=[], help="NAME=DIR (repeatable)")
    ap.add_argument(
        "--from-scores", nargs="*", default=[], help="scores.csv of earlier runs: tables only"
    )
    ap.add_argument("--perturb", nargs="*", default=[])
    ap.add_argument("--split", default="test")
    ap.add_argument("--skip-clean", action="store_true", help="only the perturbed runs")
    ap.add_argument("--exclude-sources", nargs="*", default=[], help="rows not scored")
    ap.add_argument(
        "--cap", type=int, default=0, help="at most N rows per (source, label, method), seeded"
    )
    ap.add_argument("-o", "--out", default="work/blend/eval")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_scores:  # merge runs scored in parallel processes
        df = pd.concat([pd.read_csv(f) for f in args.from_scores], ignore_index=True)
        write_tables(df, out)
        return
    rows = read_manifest(args.data, split=args.split)
    rows = rows[~rows["source"].isin(args.exclude_sources)].sort_values("path")
    if args.cap > 0:  # video frames are kept whole: a video is one group
        keep = rows["source"].eq(VIDEO_SOURCE)
        for _, g in rows[~keep].groupby(["source", "label", "method"]):
            keep[g.sample(n=min(args.cap, len(g)), random_state=0).index] = True
        rows = rows[keep]
    rows = rows.reset_index(drop=True)
    clean = [load_crop(p) for p in tqdm(rows["abs_path"], desc="crops")]
    perts = parse_perturbations(args.perturb)[1 if args.skip_clean else 0 :]
    frames, thresholds, speed = [], {}, {}
    for spec in args.model:
        name, _, d = spec.partition("=")
        model, saved = load_model(Path(d))
        thresholds[name] = saved.threshold
        for p in perts:
            crops = [apply(c, p, seed=i) for i, c in enumerate(clean)]
            t = time.perf_counter()
            s, ips = score(model, saved, crops)
            print(
                f"{name} {p.name}: {len(crops)} crops in {time.perf_counter() - t:.0f} s "
                f"(model alone {ips:.1f} img/s)",
                flush=True,
            )
            speed.setdefault(name, ips)
            f = rows[
                ["path", "source", "label", "method", "original", "frame", "face_index"]
            ].copy()
            f["y"] = (f["label"] != "real").astype(int)
            f["score"], f["model"], f["perturb"] = s, name, p.name
            f["threshold"], f["img_per_s"] = thresholds[name], ips
            frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    df.to_csv(out / "scores.csv", index=False)
    write_tables(df, out)


def write_tables(df, out: Path) -> None:
    thresholds = df.groupby("model")["threshold"].first().to_dict()
    speed = df[df.perturb == "none"].groupby("model")["img_per_s"].first().to_dict()
    table = tables(df, thresholds)
    models, perts = list(dict.fromkeys(df["model"])), list(dict.fromkeys(df["perturb"]))
    md = markdown(table, models, perts)
    (out / "tables.md").write_text(md + "\n")
    (out / "tables.json").write_text(
        json.dumps({"rows": table, "img_per_s": speed, "thresholds": thresholds}, indent=1)
    )
    plot(table, models, perts, out / "auc.png")
    print(md)
    print("model-only img/s:", {k: round(v, 1) for k, v in speed.items()})


def plot(table: list[dict], models: list[str], perts: list[str], path: Path) -> None:
    """Grouped bars: AUC per set (clean), one bar per model; CI as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys((r["set"], r["level"]) for r in table))
    fig, axes = plt.subplots(len(perts), 1, figsize=(12, 4 * len(perts)), squeeze=False)
    width = 0.8 / max(1, len(models))
    for ax, pert in zip(axes[:, 0], perts, strict=True):
        for k, m in enumerate(models):
            idx = {
                (r["set"], r["level"]): r for r in table if r["model"] == m and r["perturb"] == pert
            }
            vals = [idx.get(s, {}).get("auc") or np.nan for s in sets]
            lo = [v - (idx.get(s, {}).get("lo") or v) for s, v in zip(sets, vals, strict=True)]
            hi = [(idx.get(s, {}).get("hi") or v) - v for s, v in zip(sets, vals, strict=True)]
            xs = np.arange(len(sets)) + k * width
            ax.bar(xs, vals, width, yerr=[lo, hi], label=m, capsize=2)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.axhline(0.9, color="green", lw=0.8, ls=":")
        ax.set_xticks(np.arange(len(sets)) + 0.4 - width / 2)
        ax.set_xticklabels([f"{s} ({lv})" for s, lv in sets], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUC")
        ax.set_title(f"test split, perturbation {pert}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
