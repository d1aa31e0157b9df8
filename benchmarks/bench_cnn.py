"""Training and inference throughput (images/second) of every CNN detector.

    .venv/bin/python benchmarks/bench_cnn.py                       # CPU, 128 and 224 px
    .venv/bin/python benchmarks/bench_cnn.py --device cuda --batch-size 64 --sizes 224 299
    .venv/bin/python benchmarks/bench_cnn.py --detectors resnet18 f3net --sizes 128

Training = forward + cross-entropy + backward + AdamW step on random data (train mode);
inference = forward under `torch.inference_mode` (eval mode). Warm-up iterations are not
timed. Results print as a table (and as JSON with --json). Figures depend on the machine and
its load: record the machine with the numbers.
"""

from __future__ import annotations

import argparse
import json
import time


def bench_one(name: str, size: int, batch: int, iters: int, device: str, warmup: int = 1):
    import torch

    from unmask.detectors.cnn import build_cnn

    kwargs = {}
    if name in ("resnet18-dct", "f3net"):
        kwargs["input_size"] = size
    model = build_cnn(name, num_classes=2, **kwargs).to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 2, (batch,), device=device)
    args = (x, torch.rand(batch, 468, 3, device=device)) if model.needs_landmarks else (x,)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(*args), y)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(warmup):
        train_step()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        train_step()
    sync()
    train_ips = batch * iters / (time.perf_counter() - t0)

    model.eval()
    with torch.inference_mode():
        for _ in range(warmup):
            model(*args)
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            model(*args)
        sync()
    infer_ips = batch * iters / (time.perf_counter() - t0)
    params = sum(p.numel() for p in model.parameters())
    return {"detector": name, "size": size, "batch": batch, "params_m": params / 1e6,
            "train_ips": train_ips, "infer_ips": infer_ips}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import torch

    from unmask.detectors import list_detectors

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detectors", nargs="*", default=None, help="default: every cnn detector")
    ap.add_argument("--sizes", nargs="*", type=int, default=[128, 224])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.detectors or [n for n in list_detectors("cnn") if n != "timm"]
    rows = []
    for size in args.sizes:
        for name in names:
            r = bench_one(name, size, args.batch_size, args.iters, args.device)
            rows.append(r)
            if not args.json:
                print(f"  {name:<16} {size:>4}px  train {r['train_ips']:8.1f} img/s  "
                      f"infer {r['infer_ips']:8.1f} img/s", flush=True)  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    dev = args.device
    if dev == "cpu":
        dev += f" ({torch.get_num_threads()} threads)"
    print(f"\ndevice: {dev}, batch {args.batch_size}, {args.iters} timed iterations\n")
    print("| detector | size | params (M) | train img/s | inference img/s |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['detector']} | {r['size']} | {r['params_m']:.1f} | {r['train_ips']:.1f} "
              f"| {r['infer_ips']:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
