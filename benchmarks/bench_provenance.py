"""Provenance cost per image: `read_provenance` on files as detect reads them (from disk).

    .venv/bin/python benchmarks/bench_provenance.py [--n 200]

Goal: under 2 ms per image without a manifest (it runs in detect's stage-1 workers for
every input). Files: a 640x480 camera-like JPEG with EXIF, a 2000x1500 JPEG with no
metadata, a PNG with Stable Diffusion parameters, the same JPEG signed with a throwaway
certificate (C2PA read and validated), and a hostile PNG of 5000 text chunks. Median and
95th percentile of `--n` reads each, after a warm-up read (the `c2pa` import, ~0.1 s,
happens once per process).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from unmask.provenance import read_provenance

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test doubles (tests/doubles) ship in no wheel


def _files(d: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    files: dict[str, Path] = {}
    small = Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "Canon EOS R5", "Firmware 1.8.1"
    files["jpeg 640x480, EXIF"] = d / "camera.jpg"
    small.save(files["jpeg 640x480, EXIF"], quality=90, exif=exif)
    files["jpeg 2000x1500, bare"] = d / "large.jpg"
    Image.fromarray(rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)).save(
        files["jpeg 2000x1500, bare"], quality=90
    )
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a portrait\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7")
    files["png 640x480, SD parameters"] = d / "sd.png"
    small.save(files["png 640x480, SD parameters"], pnginfo=info)
    try:
        from doubles.provenance import sign_image, throwaway_chain

        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=90)
        files["jpeg 640x480, C2PA signed"] = d / "signed.jpg"
        files["jpeg 640x480, C2PA signed"].write_bytes(
            sign_image(buf.getvalue(), "image/jpeg", throwaway_chain())
        )
    except ImportError:
        print("c2pa-python not installed: no signed file, and `c2pa: not installed` below")
    hostile = PngImagePlugin.PngInfo()
    for i in range(5000):
        hostile.add_text(f"k{i}", "v" * 100)
    files["png, 5000 text chunks"] = d / "hostile.png"
    Image.new("RGB", (64, 64)).save(files["png, 5000 text chunks"], pnginfo=hostile)
    return files


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="reads per file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = _files(Path(tmp))
        t = time.perf_counter()
        read_provenance(files["jpeg 640x480, EXIF"])
        print(f"first read (imports c2pa): {1000 * (time.perf_counter() - t):.0f} ms\n")
        print(f"{'file':<28}{'KiB':>7}{'median ms':>11}{'p95 ms':>9}  status")
        for name, f in files.items():
            times = []
            for _ in range(args.n):
                t = time.perf_counter()
                p = read_provenance(f)
                times.append(1000 * (time.perf_counter() - t))
            p95 = statistics.quantiles(times, n=20)[-1]
            kib = f.stat().st_size / 1024
            print(f"{name:<28}{kib:>7.0f}{statistics.median(times):>11.2f}{p95:>9.2f}  {p.status}")


if __name__ == "__main__":
    main()
