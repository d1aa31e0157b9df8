"""Inference speed of the blend detector alone (no face detection, no decoding).

    OMP_NUM_THREADS=1 python benchmarks/bench_blend_detector.py [--model DIR] [--threads 1]

Reports images per wall-clock second and per CPU second of this process: on a shared,
oversubscribed machine the second figure is the one that says what the model costs.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    import torch

    from unmask.detectors.cnn import build_cnn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build_cnn("timm", backbone=args.backbone, renormalize=True).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.inference_mode():
        model(x[:2])  # warm-up
        wall, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            model(x)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    n = args.batch
    print(
        f"{args.backbone} @ {args.size}px, {args.threads} thread(s): "
        f"{n / min(wall):.1f} img/s wall (best of {args.repeats}), "
        f"{n / min(cpu):.1f} img per CPU-second"
    )


if __name__ == "__main__":
    main()
