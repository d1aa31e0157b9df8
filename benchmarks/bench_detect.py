"""Throughput and memory of `unmask detect` on a folder of shared JPEGs.

    python benchmarks/bench_detect.py --n 200                 # speed table
    python benchmarks/bench_detect.py --memory 1000 10000     # peak RSS, repeated files

Prints images/second for: a decode-only loop (the floor), decode + face detection + crop,
a naive one-image-at-a-time loop (decode, crop, model per image, one process), and
`detect_paths` (2 worker processes, batched model), plus each stage's share and the
ratios between them. Peak memory is measured in a fresh subprocess per size, on a folder
of hard links (or copies) that repeat the shared files, to show it does not grow with the count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("UNMASK_SHARED_DATA", REPO.parent / "shared" / "data"))

from bench_detect_e2e import repeat  # noqa: E402  (this folder; hard links: detect scores a file once)


def shared_jpegs(n: int) -> list[Path]:
    files = sorted((DATA / "faces").rglob("*.jpg"))
    if not files:
        sys.exit(f"no JPEGs under {DATA / 'faces'}")
    # interleave sources so every resolution is represented
    by_source: dict[str, list[Path]] = {}
    for f in files:
        by_source.setdefault(f.parts[-3], []).append(f)
    out: list[Path] = []
    while len(out) < n and any(by_source.values()):
        for lst in by_source.values():
            if lst and len(out) < n:
                out.append(lst.pop(0))
    return out


def speed(n: int, model: str | None) -> None:
    from unmask.data.faces import FaceCropper
    from unmask.data.imageio import load_image
    from unmask.inference.detect import detect_paths
    from unmask.inference.loader import load_predictor
    from unmask.inference.saved_model import default_model_dir

    files = shared_jpegs(n)
    predictor = load_predictor(model or default_model_dir())
    cropper = FaceCropper(predictor.spec)
    cropper.crop(load_image(files[0]))  # build the graphs before timing

    t = time.perf_counter()
    images = [load_image(f) for f in files]
    t_decode = time.perf_counter() - t

    t = time.perf_counter()
    crops = [c for img in images for c in cropper.crop(img)]
    t_faces = time.perf_counter() - t
    del images

    t = time.perf_counter()
    if crops:
        predictor.predict_proba([c.image for c in crops], [c.landmarks for c in crops])
    t_model = time.perf_counter() - t

    t = time.perf_counter()
    for f in files:  # naive: everything per image, one process, batch of one
        cs = cropper.crop(load_image(f))
        if cs:
            predictor.predict_proba([cs[0].image], [cs[0].landmarks])
    t_naive = time.perf_counter() - t

    t = time.perf_counter()
    results = list(detect_paths(files, predictor, workers=2))
    t_pipe = time.perf_counter() - t
    assert len(results) == len(files)

    rate = lambda s: n / s  # noqa: E731
    print(
        f"{n} images from {DATA / 'faces'} ({len(crops)} faces), model {predictor.meta.get('detector')}"
    )
    print(f"  decode only (floor)          {rate(t_decode):8.1f} img/s")
    print(
        f"  stage times, one process:    decode {t_decode:.2f}s  face detection+crop "
        f"{t_faces:.2f}s  model {t_model:.2f}s (batched)"
    )
    print(f"  naive one-at-a-time loop     {rate(t_naive):8.1f} img/s")
    print(f"  unmask detect pipeline (2p)  {rate(t_pipe):8.1f} img/s")
    print(
        f"  pipeline / naive = {t_naive / t_pipe:.2f}x   pipeline / decode floor = "
        f"{t_decode / t_pipe:.2f}x"
    )


def memory(count: int, model: str | None) -> None:
    src = shared_jpegs(400)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            repeat(src[i % len(src)], Path(tmp) / f"{i:06d}.jpg")
        code = (
            "import json,resource,sys\n"
            "from unmask.inference.detect import detect_paths, expand_inputs\n"
            "from unmask.inference.loader import load_predictor\n"
            "from unmask.inference.saved_model import default_model_dir\n"
            f"p = load_predictor({model!r} or default_model_dir())\n"
            "n = 0\n"
            f"for r in detect_paths(list(expand_inputs([{tmp!r}])), p, workers=2):\n"
            "    n += 1\n"
            "print(json.dumps({'n': n, 'maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
        )
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"  {count:>6} images: main process peak RSS {res['maxrss_mb']:.0f} MB, "
            f"largest child so far {kids:.0f} MB, {time.perf_counter() - t:.0f}s"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", default=None)
    ap.add_argument("--memory", type=int, nargs="*", default=None)
    a = ap.parse_args()
    if a.memory:
        print("peak memory of detect_paths over a folder (files repeated):")
        for c in a.memory:
            memory(c, a.model)
    else:
        speed(a.n, a.model)


if __name__ == "__main__":
    main()
