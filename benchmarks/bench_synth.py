"""Synthesis speed: seconds per 1 000 images for each `unmask synth` method.

    .venv/bin/python benchmarks/bench_synth.py [--manifest work/prepared] [--n 200] [--device cpu]

Times the pure functions / nets on crops already in memory (no PNG I/O; the CLI adds about
5-10 ms per image for reading and writing PNGs):
  blend      `self_blend` on 256 px crops
  pair       `pair_blend` (Delaunay warp + seamlessClone) on 256 px crops
  upsample   auto-encoder training (`--ae-steps` steps at `--ae-size` px, batch 16) and then
             reconstruction of crops at that size
  gan        WGAN-GP sampling at 64 px (the training time for `--gan-steps` steps is reported too)
Uses the real crops and landmarks of `--manifest` when given, otherwise generated 256 px images
with synthetic landmarks (points on an ellipse). Results are printed as a table and as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _generated(n: int, size: int = 256, seed: int = 0):
    rng = np.random.default_rng(seed)
    imgs, lms = [], []
    for _ in range(n):
        t = rng.uniform(0, 2 * np.pi, 468)
        r = np.sqrt(rng.uniform(0, 1, 468))
        lm = np.stack([0.5 + 0.25 * r * np.cos(t), 0.52 + 0.33 * r * np.sin(t), np.zeros(468)], 1)
        imgs.append(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        lms.append(lm.astype(np.float32))
    return imgs, lms


def _from_manifest(path: str, n: int):
    from unmask.data.manifest import read_manifest
    from unmask.synth.common import load_landmarks, load_rgb

    df = read_manifest(path)
    df = df[(df["label"] == "real") & (df["abs_landmarks"] != "")].head(n)
    return [load_rgb(p) for p in df["abs_path"]], [load_landmarks(p) for p in df["abs_landmarks"]]


def main() -> None:
    import torch

    from unmask.synth.blend import pair_blend, self_blend
    from unmask.synth.common import resize
    from unmask.synth.train import reconstruct, sample, train_autoencoder, train_wgan_gp

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--manifest", default="")
    ap.add_argument("--n", type=int, default=200, help="images per timing")
    ap.add_argument("--ae-size", type=int, default=128)
    ap.add_argument("--ae-steps", type=int, default=100)
    ap.add_argument("--gan-steps", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    imgs, lms = _from_manifest(args.manifest, args.n) if args.manifest else _generated(args.n)
    n = len(imgs)
    res: dict[str, float] = {"images": n, "torch_threads": torch.get_num_threads()}

    t = time.perf_counter()
    for i in range(n):
        self_blend(imgs[i], lms[i], np.random.default_rng(i))
    res["blend_s_per_1000"] = (time.perf_counter() - t) / n * 1000

    t = time.perf_counter()
    for i in range(n):
        j = (i + 1) % n
        pair_blend(imgs[i], lms[i], imgs[j], lms[j], np.random.default_rng(i))
    res["pair_s_per_1000"] = (time.perf_counter() - t) / n * 1000

    small = np.stack([resize(im, args.ae_size) for im in imgs])
    t = time.perf_counter()
    ae, _ = train_autoencoder(
        small, "transposed", steps=args.ae_steps, device=args.device, progress=False
    )
    res[f"upsample_train_s_per_{args.ae_steps}_steps"] = time.perf_counter() - t
    t = time.perf_counter()
    reconstruct(ae, small, device=args.device)
    res["upsample_reconstruct_s_per_1000"] = (time.perf_counter() - t) / n * 1000

    g64 = np.stack([resize(im, 64) for im in imgs])
    t = time.perf_counter()
    g, _, _ = train_wgan_gp(g64, size=64, steps=args.gan_steps, device=args.device, progress=False)
    res[f"gan_train_s_per_{args.gan_steps}_steps"] = time.perf_counter() - t
    t = time.perf_counter()
    sample(g, 1000, device=args.device)
    res["gan_sample_s_per_1000"] = time.perf_counter() - t

    for k, v in res.items():
        print(f"{k:36s} {v:10.2f}")
    print(json.dumps({k: round(v, 3) for k, v in res.items()}))


if __name__ == "__main__":
    main()
