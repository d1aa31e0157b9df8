"""Images per second for the stages of `unmask prepare` on N shared images.

    .venv/bin/python benchmarks/bench_prepare.py [--n 200] [--workers 2] [--data ../shared/data]

Stages: decode (`load_image`), face detection only (`FaceCropper.detect`), detection + crop
+ face mesh (`FaceCropper.crop`), all in one process; then the full `prepare()` (PNG + .npy
writing, manifest, splits) with `--workers` processes, cold (no earlier records) and resumed.
The N images are taken round-robin from every source in labels.csv so that small (128 px)
and large (2500 px) images are mixed as in the real data. Figures depend on the machine and
on what else is running on it: report them with the core count and the load.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pick_images(data: Path, n: int) -> list[tuple[Path, str, str]]:
    by_source: dict[str, list[tuple[Path, str, str]]] = defaultdict(list)
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["path"].lower().endswith((".mp4", ".avi", ".mov", ".mkv", ".webm")):
                continue
            by_source[row["source"]].append((data / row["path"], row["label"], row["source"]))
    pools = [sorted(v) for _, v in sorted(by_source.items())]
    out: list[tuple[Path, str, str]] = []
    i = 0
    while len(out) < n and any(i < len(p) for p in pools):
        for p in pools:
            if i < len(p) and len(out) < n:
                out.append(p[i])
        i += 1
    return out


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.1f} images/s  ({seconds:6.2f} s for {count})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    if not (args.data / "labels.csv").is_file():
        print(f"shared data not found at {args.data}", file=sys.stderr)
        return 2

    from unmask.data.faces import FaceCropper
    from unmask.data.imageio import load_image
    from unmask.data.prepare import prepare
    from unmask.data.spec import PreprocessSpec

    items = pick_images(args.data, args.n)
    n = len(items)
    print(
        f"{n} images from {len({s for _, _, s in items})} sources; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )

    t = time.perf_counter()
    images = [load_image(p) for p, _, _ in items]
    print("decode            ", rate(n, time.perf_counter() - t))

    with FaceCropper(PreprocessSpec()) as cropper:
        cropper.detect(images[0])  # load the graphs outside the timing
        cropper.crop(images[0])
        t = time.perf_counter()
        found = sum(bool(cropper.detect(im)[0]) for im in images)
        print("detect (1 proc)   ", rate(n, time.perf_counter() - t), f"faces in {found}/{n}")
        t = time.perf_counter()
        for im in images:
            cropper.crop(im)
        print("crop+mesh (1 proc)", rate(n, time.perf_counter() - t))

    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.csv"
        with open(listing, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "label", "source"])
            for p, label, source in items:
                w.writerow([str(p), label, source])
        out = Path(tmp) / "out"
        t = time.perf_counter()
        res = prepare(listing, out, workers=args.workers, progress=False)
        dt = time.perf_counter() - t
        print(f"prepare ({args.workers} proc)  ", rate(n, dt), f"{res.n_faces} crops")
        t = time.perf_counter()
        prepare(listing, out, workers=args.workers, progress=False, log=lambda _m: None)
        print("prepare (resumed) ", rate(n, time.perf_counter() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
