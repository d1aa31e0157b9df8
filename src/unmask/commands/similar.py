"""`unmask similar`: which known images does this face look like?"""

from __future__ import annotations

import argparse

HELP = "nearest known faces in an index, with their labels and sources"
DESCRIPTION = """\
Find the face in IMAGE, embed it with the index's model, and list the k nearest indexed
faces with their label and source; a contact sheet PNG shows them. With --evaluate, measure
k-NN attribution accuracy (label and source by majority vote of the k neighbours) on a
manifest split the index was not built from.

examples:
  unmask similar work/index photo.jpg -k 10 --sheet out/similar.png
  unmask similar work/index --evaluate work/prepared --split test -k 5
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("index", metavar="INDEX", help="folder written by `unmask index`")
    p.add_argument("image", metavar="IMAGE", nargs="?", help="image to look up")
    p.add_argument("-k", type=int, default=10, help="neighbours (default 10)")
    p.add_argument("--sheet", metavar="PNG", help="write a contact sheet here")
    p.add_argument("--evaluate", metavar="MANIFEST", help="k-NN attribution accuracy")
    p.add_argument("--split", default="test", help="split of --evaluate's manifest")
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from unmask.data.manifest import load_crop
    from unmask.errors import UnmaskError
    from unmask.inference.loader import load_predictor
    from unmask.inference.retrieval import contact_sheet, embed_rows, knn_vote, load_index

    if args.k < 1:
        raise UnmaskError("-k must be >= 1")
    idx = load_index(args.index)
    predictor = load_predictor(idx.meta["model"], device=args.device)
    if args.evaluate:
        from unmask.data.manifest import read_manifest

        rows = read_manifest(args.evaluate, args.split)
        if len(rows) == 0:
            raise UnmaskError(f"split {args.split!r} of {args.evaluate} is empty")
        indexed = {it["path"] for it in idx.items}
        overlap = sum(p in indexed for p in rows["abs_path"])
        if overlap:
            raise UnmaskError(
                f"{overlap} evaluation faces are in the index itself; build the "
                "index from another split"
            )
        _, ids = idx.search(embed_rows(predictor, rows), args.k)
        print(
            f"k-NN attribution on {len(rows)} faces ({args.evaluate}, split {args.split}), "
            f"k={args.k}"
        )
        for key in ("label", "source"):
            pred = np.array(knn_vote(ids, idx.items, key))
            acc = float((pred == rows[key].to_numpy()).mean())
            print(f"  {key:<6} accuracy {acc:.3f}")
            for val in sorted(rows[key].unique()):
                m = rows[key].to_numpy() == val
                print(
                    f"    {val:<18} n={int(m.sum()):<5} recall {float((pred[m] == val).mean()):.3f}"
                )
        return 0
    if not args.image:
        raise UnmaskError("give an IMAGE to look up, or --evaluate MANIFEST")
    from unmask.inference.detect import detect_paths

    if not Path(args.image).is_file():  # a folder expands to no file or to many: one image
        what = "a folder" if Path(args.image).is_dir() else "not a file"
        raise UnmaskError(f"{args.image}: {what}; similar looks up one IMAGE")
    res = next(iter(detect_paths([args.image], predictor, workers=1, keep_crops=True)), None)
    if res is None:
        raise UnmaskError(f"{args.image}: nothing to look up")
    if res.status == "error":
        raise UnmaskError(f"{args.image}: {res.reason} {res.detail}".strip())
    if not res.faces:
        raise UnmaskError(f"{args.image}: no face found")
    face = max(res.faces, key=lambda f: f.box[2] - f.box[0])
    sims, ids = idx.search(predictor.embed([face.crop], [face.landmarks]), args.k)
    print(f"{'rank':>4}  {'similarity':>10}  {'label':<7} {'source':<18} path")
    neighbours = []
    for r, (s, i) in enumerate(zip(sims[0], ids[0], strict=True), 1):
        it = idx.items[int(i)]
        print(f"{r:>4}  {s:>10.3f}  {it['label']:<7} {it['source']:<18} {it['path']}")
        if args.sheet:
            img = load_crop(it["path"])
            neighbours.append((img, f"{it['label']} {s:.2f}\n{it['source']}"))
    if args.sheet:
        contact_sheet(face.crop, neighbours, Path(args.sheet))
        print(f"contact sheet: {args.sheet}")
    return 0
