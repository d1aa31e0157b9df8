"""`unmask index`: a nearest-neighbour index of detector embeddings."""

from __future__ import annotations

import argparse

HELP = "build a FAISS index of detector embeddings (for `unmask similar`)"
DESCRIPTION = """\
Embed every face of DATA (a manifest, or a folder laid out <source>/<label>/ which is
prepared with the model's own preprocessing) with the model's penultimate features
(spectrum features for classical models) and store them in a FAISS index together with
each item's label and source.

example:
  unmask index --model runs/resnet18 work/prepared --split train -o work/index
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", help="manifest or folder")
    p.add_argument("--model", "-m", default=None, help="model folder (default: shipped model)")
    p.add_argument("-o", "--out", required=True, help="index folder to write")
    p.add_argument("--split", default=None, help="only this split of a manifest (default all)")
    p.add_argument(
        "--ivf",
        type=int,
        default=0,
        metavar="NLIST",
        help="IVF index with NLIST lists for large sets (default: exact flat)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--member",
        default=None,
        help="composite models: the member whose embeddings to index (default: the first "
        "that scores face crops, e.g. the shipped model's `blend`)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unmask.data.checks import check_rows
    from unmask.data.inputs import ensure_writable_dir
    from unmask.errors import UnmaskError
    from unmask.evaluation.report import load_eval_rows
    from unmask.inference.device import check_device
    from unmask.inference.loader import load_predictor
    from unmask.inference.retrieval import build_index, embed_rows, save_index
    from unmask.inference.saved_model import default_model_dir

    if args.ivf < 0:
        raise UnmaskError(f"--ivf must be >= 0, got {args.ivf}")
    device = check_device(args.device)
    if not Path(args.data).exists():  # before the index folder is made
        raise UnmaskError(f"data not found: {args.data}")
    out = ensure_writable_dir(args.out, "index folder")  # before the work, not after it
    model_dir = Path(args.model) if args.model else default_model_dir()
    model_dir = embedding_model_dir(model_dir, args.member)
    predictor = load_predictor(model_dir, device=device)
    spec = predictor.spec
    rows = load_eval_rows(args.data, args.split, spec, work_dir=out / ".work")
    rows = check_rows(rows, str(args.data))  # unknown labels, duplicates, missing crops
    emb = embed_rows(predictor, rows)
    index = build_index(emb, ivf_lists=args.ivf)
    items = rows[["path", "label", "source", "split"]].copy()
    items["path"] = rows["abs_path"]
    meta = {
        "model": str(model_dir.resolve()),
        "dims": int(emb.shape[1]),
        "count": len(rows),
        "kind": "ivf" if args.ivf else "flat",
        "metric": "cosine",
    }
    save_index(out, index, items.to_dict("records"), meta)
    print(f"indexed {len(rows)} faces ({emb.shape[1]}-d embeddings) -> {out}")
    return 0


def embedding_model_dir(model_dir, name: str | None):
    """The folder whose embeddings to index. A composite has no single embedding space:
    one member (a complete model folder of its own, which `unmask similar` then loads),
    `name`, or the first that scores resized face crops (their penultimate features
    describe the face; a tile member's describe pixels). Decided from model.json alone."""
    from unmask.errors import UnmaskError
    from unmask.inference.loader import predictor_kind, saved_needs
    from unmask.modelfile import member_dir, read_saved_model

    saved = read_saved_model(model_dir)
    if not predictor_kind(saved).has_members:
        if name:
            raise UnmaskError(f"--member: {model_dir} is not a composite model")
        return model_dir
    names = [m.name for m in saved.fusion.members]
    if name is not None and name not in names:
        raise UnmaskError(f"--member {name!r}: {model_dir} has members {', '.join(names)}")
    crops = [n for n in names if not saved_needs(member_dir(model_dir, n)).tiles]
    return member_dir(model_dir, name or (crops or names)[0])
