"""Where `unmask detect` spends CPU per face, stage by stage, and what a cheaper face finder
would change (issue 21). One process, one thread, stages run one after another.

    python benchmarks/bench_stages.py                      # 40 files of each image source
    python benchmarks/bench_stages.py --per-source 100 --json out.json

Per source of labels.csv (images only; both labels), for `--per-source` files:

    decode        Pillow decode to RGB (`load_image`)
    find          the MediaPipe cascade as shipped (`FaceCropper.detect`), and which pass won
    crop          square crop + resize (`FaceCropper.crop` minus `detect`)
    options       face finders that would be cheaper, each against the shipped boxes:
                  the full-range model on a copy downscaled to at most 320 / 640 px, and the
                  short-range model first; ms per image, median IoU with the shipped face box
                  and the share of faces at IoU >= 0.9 (a face missed counts as IoU 0)

then, for the shipped model's members on a batch of the crops found: preprocess (resize +
normalise) and network, CPU-ms per face, on torch and on ONNX Runtime, side by side.
Figures depend on the machine and its load: report them with both.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("UNMASK_SHARED_DATA", REPO.parent / "shared" / "data"))
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def files_by_source(per_source: int, images_only: bool = True) -> dict[str, list[Path]]:
    """`per_source` files of every source in labels.csv (images only, unless told), labels
    interleaved."""
    by: dict[str, dict[str, list[Path]]] = {}
    with open(DATA / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            path = DATA / row["path"]
            if path.suffix.lower() in IMAGE_EXT or not images_only:
                by.setdefault(row["source"], {}).setdefault(row["label"], []).append(path)
    out = {}
    for source, labels in sorted(by.items()):
        lists = [sorted(v) for _, v in sorted(labels.items())]
        picked = [p for group in zip(*lists, strict=False) for p in group]
        out[source] = picked[:per_source]
    return out


def iou(a, b) -> float:
    if a is None or b is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def timed(fn, *args):
    t0 = time.process_time()
    out = fn(*args)
    return out, 1000 * (time.process_time() - t0)


def downscaled_finder(cropper, limit: int):
    """The shipped cascade on a copy whose longest side is at most `limit`, boxes mapped back."""
    import cv2

    def find(image):
        h, w = image.shape[:2]
        scale = min(1.0, limit / max(h, w))
        if scale < 1.0:
            small = cv2.resize(
                image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
        else:
            small = image
        dets, name = cropper.detect(small)
        for d in dets:
            d["box"] = tuple(v / scale for v in d["box"])
        return dets, name

    return find


def short_first_finder(cropper):
    """The short-range model first, then the shipped cascade."""
    from unmask.data import faces

    def find(image):
        saved = faces.DETECTOR_PASSES
        faces.DETECTOR_PASSES = (saved[2], saved[0], saved[1], saved[3])
        try:
            return cropper.detect(image)
        finally:
            faces.DETECTOR_PASSES = saved

    return find


def stage1(files: list[Path], cropper, options: dict) -> tuple[dict, list]:
    from unmask.data.imageio import load_image

    ms: dict[str, list[float]] = {"decode": [], "find": [], "crop": []}
    passes: dict[str, int] = {}
    opt_ms: dict[str, list[float]] = {k: [] for k in options}
    opt_iou: dict[str, list[float]] = {k: [] for k in options}
    crops = []
    for path in files:
        image, t = timed(load_image, path)
        ms["decode"].append(t)
        (dets, name), t = timed(cropper.detect, image)
        ms["find"].append(t)
        passes[name or "none"] = passes.get(name or "none", 0) + 1
        found, t = timed(cropper.crop, image)
        ms["crop"].append(max(t - ms["find"][-1], 0.0))  # crop() detects again
        crops += [c.image for c in found[:1]]
        ref = dets[0]["box"] if dets else None
        for key, fn in options.items():
            (odets, _), t = timed(fn, image)
            opt_ms[key].append(t)
            if ref is not None:
                opt_iou[key].append(iou(ref, odets[0]["box"] if odets else None))
    row = {k: statistics.mean(v) for k, v in ms.items()}
    row["passes"] = passes
    row["options"] = {
        k: {
            "ms": statistics.mean(opt_ms[k]),
            "median_iou": statistics.median(opt_iou[k]) if opt_iou[k] else None,
            "share_iou_ge_0.9": sum(v >= 0.9 for v in opt_iou[k]) / max(len(opt_iou[k]), 1),
        }
        for k in options
    }
    return row, crops


def member_stages(crops: list, model_dir: Path) -> dict:
    """CPU-ms per face of each CNN member's preprocess and network, torch vs ONNX Runtime."""
    import torch

    torch.set_num_threads(1)
    from unmask.inference import predictor as predictor_module

    load = getattr(predictor_module, "load_predictor", None)
    if load is None:  # the loader moved (issue 22)
        from unmask.inference.loader import load_predictor as load
    out: dict[str, dict] = {}
    batch = crops[:32]
    for runtime in ("torch", "onnx"):
        pred = load(model_dir, runtime=runtime)
        members = getattr(pred, "members", None) or {"model": pred}
        for name, m in members.items():
            if not hasattr(m, "preprocess"):
                continue
            x, _ = timed(m.preprocess, batch)  # warm
            pre = statistics.median(timed(m.preprocess, batch)[1] for _ in range(3))
            score = m._onnx if m.runtime == "onnx" else m.fast
            with torch.inference_mode():
                timed(score, x)
                net = statistics.median(timed(score, x)[1] for _ in range(3))
            row = out.setdefault(name, {})
            row[f"{runtime}_preprocess"] = pre / len(batch)
            row[f"{runtime}_network"] = net / len(batch)
            row[f"{runtime}_runtime"] = m.runtime
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-source", type=int, default=40)
    ap.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not (DATA / "labels.csv").is_file():
        sys.exit(f"no {DATA / 'labels.csv'}: set UNMASK_SHARED_DATA")
    from unmask.data.faces import FaceCropper
    from unmask.data.spec import PreprocessSpec

    cropper = FaceCropper(PreprocessSpec(), landmarks=False).warm_up()
    options = {
        "downscale_320": downscaled_finder(cropper, 320),
        "downscale_640": downscaled_finder(cropper, 640),
        "short_first": short_first_finder(cropper),
    }
    result: dict = {"sources": {}}
    all_crops: list = []
    print(
        f"{'source':18} {'n':>4} {'decode':>7} {'find':>6} {'crop':>5}  passes; options ms (median IoU, IoU>=0.9)"
    )
    for source, files in files_by_source(args.per_source).items():
        row, crops = stage1(files, cropper, options)
        all_crops += crops
        result["sources"][source] = row
        opts = "; ".join(
            f"{k} {v['ms']:.1f} ({v['median_iou'] or 0:.2f}, {v['share_iou_ge_0.9']:.0%})"
            for k, v in row["options"].items()
        )
        print(
            f"{source:18} {len(files):4d} {row['decode']:7.1f} {row['find']:6.1f} {row['crop']:5.1f}  "
            f"{row['passes']}; {opts}",
            flush=True,
        )
    model = args.model or REPO / "src" / "unmask" / "assets" / "default_model"
    result["members"] = member_stages(all_crops, model)
    print(
        f"\n{'member':10} {'torch pre':>10} {'torch net':>10} {'onnx pre':>9} {'onnx net':>9}  (CPU-ms a face, 1 thread)"
    )
    for name, r in result["members"].items():
        print(
            f"{name:10} {r['torch_preprocess']:10.1f} {r['torch_network']:10.1f} "
            f"{r['onnx_preprocess']:9.1f} {r['onnx_network']:9.1f}  ({r['onnx_runtime']})"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
