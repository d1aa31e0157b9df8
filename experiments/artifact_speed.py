"""Scoring speed of a tile model next to a crop model on 300 shared JPEG faces (issue 11).

    python experiments/artifact_speed.py --tile work/models/artifact \
        --crop src/unmask/assets/default_model --n 300

Both start from the decoded original and the manifest's face box (face detection, the same
for both, is not timed). Tile model: cut_tiles -> network (mean of tile logits). Crop model:
square crop resized to the prepare crop size (PIL bilinear) -> predictor. Times are CPU
seconds of this process (time.process_time), one thread, so that other jobs sharing the
machine do not inflate them; img/s = faces per CPU-second.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="work/prepared/manifest.csv")
    ap.add_argument("--tile", required=True)
    ap.add_argument("--crop", required=True)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", default="work/artifact/speed.json")
    args = ap.parse_args()

    import torch
    from PIL import Image

    torch.set_num_threads(1)
    from artifact_eval import load_tile_model, rows_for, tile_scores

    from unmask.data.extract import decode_original, row_box
    from unmask.data.tiles import cut_tiles
    from unmask.inference.loader import load_predictor

    df = rows_for(args.manifest, "test", 0, 0)
    df = df[df["abs_original"].str.lower().str.endswith((".jpg", ".jpeg"))]
    df = df.sample(n=min(args.n, len(df)), random_state=0).reset_index(drop=True)
    rows = df.to_dict("records")
    t0 = time.process_time()
    originals = [decode_original(r) for r in rows]
    t_decode = time.process_time() - t0

    model, spec, _, _ = load_tile_model(Path(args.tile))
    t0 = time.process_time()
    tiles = np.stack([cut_tiles(o, row_box(r), spec) for o, r in zip(originals, rows, strict=True)])
    t_cut = time.process_time() - t0
    t0 = time.process_time()
    tile_scores(model, tiles)
    t_tile_net = time.process_time() - t0

    pred = load_predictor(args.crop)
    size = int(pred.spec.crop_size)
    t0 = time.process_time()
    crops = []
    for o, r in zip(originals, rows, strict=True):
        x0, y0, x1, y1 = row_box(r)
        crops.append(np.asarray(Image.fromarray(o).crop((x0, y0, x1, y1)).resize((size, size))))
    t_crop = time.process_time() - t0
    t0 = time.process_time()
    for i in range(0, len(crops), 32):
        pred.predict_proba(crops[i : i + 32])
    t_crop_net = time.process_time() - t0

    n = len(rows)
    res = {
        "n_faces": n,
        "decode_s": t_decode,
        "tile": {
            "model": args.tile,
            "spec": spec.__dict__,
            "detector_img_per_cpu_s": n / t_tile_net,
            "end_to_end_img_per_cpu_s": n / (t_decode + t_cut + t_tile_net),
        },
        "crop": {
            "model": args.crop,
            "detector_img_per_cpu_s": n / t_crop_net,
            "end_to_end_img_per_cpu_s": n / (t_decode + t_crop + t_crop_net),
        },
    }
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
