"""Feature extraction speed: images per second for the DCT and spectrum features.

    .venv/bin/python benchmarks/bench_features.py [--n 50]

One process, random RGB uint8 images of the feature size (no resize), grayscale included.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unmask.features.frequency import image_features


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50, help="images per measurement")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'feature':<10}{'size':>6}{'images/s':>12}{'ms/image':>10}")
    for size in (256, 1024):
        imgs = rng.integers(0, 256, (min(args.n, 8), size, size, 3), dtype=np.uint8)
        for kind in ("dct", "spectrum"):
            n = args.n if size == 256 else max(args.n // 5, 5)
            image_features(imgs[0], kind, size)  # warm-up
            t = time.perf_counter()
            for i in range(n):
                image_features(imgs[i % len(imgs)], kind, size)
            dt = time.perf_counter() - t
            print(f"{kind:<10}{size:>6}{n / dt:>12.1f}{1000 * dt / n:>10.2f}")


if __name__ == "__main__":
    main()
