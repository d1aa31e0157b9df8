"""Choose the default's members and fusion rule on val, with members that never saw the
scored source.

    python experiments/fusion_rule.py --prepared work/prepared -o work/default/fusion_rule.json \
        --member 'gan=work/default/loso/gan-{source}|work/default/gan' \
        --member blend=work/default/blend \
        --member 'artifact=work/default/loso/artifact-{source}|work/default/artifact'

`unmask compose --rule auto` holds sources out of the FUSION fit only: members trained on
every source already know each val source and hide how the fusion behaves on a generator
nobody trained on. Here, for every val source S with fakes, each member is its `{source}`
folder for S when it exists (trained without S; else its fallback, which must never have
trained on S's fakes: the blend member trains on no fake at all; a candidate with a member
that did is reported but not eligible); calibration, fusion and the
threshold are fitted on the val rows of the other sources
(`unmask.evaluation.compose.held_out_split`), and S is scored.

Candidates: every non-empty subset of the members, fused by max or logistic stacking
(one member: its Platt calibration alone). Per held-out source: the AUC, plain and
size-matched (a fakes-only source's reals weighted to its fakes' face sizes, as `unmask
bench` reports it); and, at the threshold the rule would choose (at most `--max-fpr` of
every other real source flagged), the detection rate on S. The choice is the highest mean
size-matched AUC over held-out sources (`--criterion plain` for the plain one); ties go to
fewer members, then to max. The last two lines say it: `members: a,b` and `rule: max`.
Writes the tables to `-o`. Test rows are never read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--member", action="append", required=True, metavar="NAME=DIR[|FALLBACK]")
    ap.add_argument("--prepared", default="work/prepared", help="manifest with a val split")
    ap.add_argument("--criterion", choices=("matched", "plain"), default="matched")
    ap.add_argument("--max-fpr", type=float, default=0.05)
    ap.add_argument("-o", "--output", type=Path, required=True, help="the JSON written")
    args = ap.parse_args(argv)

    from unmask.data.manifest import read_manifest
    from unmask.errors import UnmaskError
    from unmask.evaluation.bench import parse_models, size_matched
    from unmask.evaluation.compose import choose_threshold, fit_fusion, held_out_split
    from unmask.evaluation.scoring import row_box_sides, score_rows
    from unmask.inference.composite import fuse
    from unmask.inference.loader import load_predictor
    from unmask.inference.predictor import p_fake
    from unmask.metrics import roc_auc

    try:
        members = parse_models(args.member)
        df = read_manifest(args.prepared, split="val")
    except UnmaskError as exc:
        print(f"fusion_rule: {exc}", file=sys.stderr)
        return 1
    y = (df["label"] != "real").to_numpy().astype(int)
    src = df["source"].astype(str).to_numpy()
    sides = row_box_sides(df)
    cache: dict[Path, np.ndarray] = {}

    def scores(folder: Path) -> np.ndarray:
        key = folder.resolve()
        if key not in cache:
            print(f"scoring val with {folder}", file=sys.stderr)
            cache[key] = p_fake(score_rows(load_predictor(folder), df, progress=False))
        return cache[key]

    def saw(folder: Path, s: str) -> bool:
        """Whether the model in `folder` trained on the fakes of source `s`: `s` among its
        training sources and one of its training labels among `s`'s fake labels."""
        from unmask.modelfile import read_saved_model

        training = read_saved_model(folder).training
        if s not in (training.get("train_sources") or []):
            return False
        labels = set(((training.get("config") or {}).get("data") or {}).get("labels") or [])
        fakes = set(df.loc[(src == s) & (y == 1), "label"].astype(str))
        return not labels or bool(labels & fakes)

    names = [m.name for m in members]
    subsets = [c for k in range(1, len(names) + 1) for c in itertools.combinations(names, k)]
    cands = [
        (sub, r) for sub in subsets for r in (("max",) if len(sub) == 1 else ("max", "logistic"))
    ]
    label = {c: "+".join(c[0]) + ("" if len(c[0]) == 1 else f" ({c[1]})") for c in cands}
    table: dict[str, dict[str, dict[str, float | None]]] = {}
    for s in sorted(set(src[y == 1])):
        cols = {m.name: scores(m.folder(s)) for m in members}
        seen = {m.name for m in members if saw(m.folder(s), s)}
        fit, test = held_out_split(y, src, s)
        fake_only = not ((src == s) & (y == 0)).any()
        row: dict[str, dict[str, float | None]] = {}
        for c in cands:
            sub, rule = c
            x = np.stack([cols[n] for n in sub], 1)
            fusion = fit_fusion(x[fit], y[fit], list(sub), rule)
            fitted = fuse(x[fit], fusion)[0]
            thr, _ = choose_threshold(y[fit], fitted, src[fit], args.max_fpr)
            p = fuse(x[test], fusion)[0]
            yt = y[test]
            matched = size_matched(yt, p, sides[test])["auc_size_matched"] if fake_only else None
            plain = roc_auc(yt, p)
            row[label[c]] = {
                "auc": plain,
                "auc_size_matched": plain if not fake_only else matched,
                "tpr": float(np.mean(p[yt == 1] >= thr)),
                # a member that trained on this source's fakes: not a held-out figure
                "held_out": not (set(sub) & seen),
            }
        table[s] = row
    crit = "auc_size_matched" if args.criterion == "matched" else "auc"
    mean = {
        label[c]: float(
            np.nanmean(
                [np.nan if r[label[c]][crit] is None else r[label[c]][crit] for r in table.values()]
            )
        )
        for c in cands
    }
    cols_order = [label[c] for c in cands]
    print(f"held-out val sources, {crit} (tpr at the {args.max_fpr:.0%}-per-source threshold)")
    for s, row in table.items():
        cells = ", ".join(
            f"{k} {v[crit]:.3f} ({v['tpr']:.2f})" if v[crit] is not None else f"{k} -"
            for k, v in row.items()
        )
        print(f"  {s}: {cells}")
    print("mean: " + ", ".join(f"{k} {mean[k]:.3f}" for k in cols_order))
    # only candidates held out on every source compete (a member without leave-one-source-
    # out folds, trained on some source's fakes, is reported but cannot be chosen)
    eligible = [c for c in cands if all(r[label[c]]["held_out"] for r in table.values())]
    if not eligible:
        print("fusion_rule: no candidate is held out on every source", file=sys.stderr)
        return 1
    for c in cands:
        if c not in eligible:
            print(f"not held out everywhere (not eligible): {label[c]}")
    best = max(eligible, key=lambda c: (round(mean[label[c]], 6), -len(c[0]), c[1] == "max"))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "criterion": args.criterion,
                "max_fpr": args.max_fpr,
                "members": {m.name: {"path": m.path, "fallback": m.fallback} for m in members},
                "table": table,
                "mean": mean,
                "eligible": [label[c] for c in eligible],
                "chosen": {"members": list(best[0]), "rule": best[1]},
            },
            indent=1,
        )
        + "\n"
    )
    print(f"members: {','.join(best[0])}")
    print(f"rule: {best[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
