"""Choose the fused default's rule on val with members that never saw the scored source.

    python experiments/fusion_rule.py work/default [--prepared work/prepared] [--size-edges 200,400]

`unmask compose --rule auto` holds sources out of the FUSION fit only: its members were
trained on every source, so on val the artifact member already knows each GAN source and
hides how the fusion behaves on a generator nobody trained on. Here, for every val source S
with fakes, the artifact member is OUT/loso/artifact-S when it exists (trained without S;
else OUT/artifact, which never trains on edited fakes) and the blend member is OUT/blend
(never trains on any fake); calibration and fusion are fitted on the val rows of the other
sources (`unmask.evaluation.compose.held_out_split`), and the AUC is measured on S. With
--size-edges, each rule is also tried with the artifact member calibrated per face size
(`unmask compose --size-calibrate`, modes platt and abstain), and the last two lines say
the rule and which size calibration earned its place ("size: no|platt|abstain").

Two AUCs per held-out source: plain, and size-matched (for a source with fakes only, the
reals weighted to the fakes' face sizes, as `unmask bench` reports it). The choice is made on
the size-matched mean (`--criterion plain` for the other): the shared GAN sources hold
larger faces than most reals, so the plain AUC rewards a rule for flagging large faces,
which is what size calibration is there to stop. Writes OUT/fusion_rule.json. Test rows
are never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the folder train_default.sh writes (OUT)")
    ap.add_argument("--prepared", default="work/prepared", help="manifest with a val split")
    ap.add_argument("--size-edges", default="", help="also try the artifact member per size")
    ap.add_argument("--criterion", choices=("matched", "plain"), default="matched")
    args = ap.parse_args(argv)

    from unmask.data.manifest import read_manifest
    from unmask.errors import UnmaskError
    from unmask.evaluation.bench import size_matched
    from unmask.evaluation.compose import fit_fusion, held_out_split
    from unmask.evaluation.scoring import row_box_sides, score_rows
    from unmask.inference.composite import fuse
    from unmask.inference.predictor import load_predictor
    from unmask.metrics import roc_auc

    try:
        df = read_manifest(args.prepared, split="val")
    except UnmaskError as exc:
        print(f"fusion_rule: {exc}", file=sys.stderr)
        return 1
    y = (df["label"] != "real").to_numpy().astype(int)
    src = df["source"].astype(str).to_numpy()
    sides = row_box_sides(df)
    edges = tuple(float(v) for v in args.size_edges.split(",")) if args.size_edges else ()
    variants = [(r, (), "") for r in ("max", "logistic")]
    if edges:
        variants += [(r, edges, m) for m in ("platt", "abstain") for r in ("max", "logistic")]

    def p_fake(folder: Path) -> np.ndarray:
        return 1.0 - np.asarray(score_rows(load_predictor(folder), df, progress=False))[:, 0]

    blend, art_all = p_fake(args.out / "blend"), p_fake(args.out / "artifact")
    table: dict[str, dict[str, float]] = {}
    matched: dict[str, dict[str, float]] = {}

    def aucs(rows: np.ndarray, p: np.ndarray, fake_only: bool) -> tuple[float, float]:
        plain = roc_auc(y[rows], p[rows])
        if not fake_only:
            return plain, plain
        m = size_matched(y[rows], p[rows], sides[rows])["auc_size_matched"]
        return plain, (float("nan") if m is None else m)

    for s in sorted(set(src[y == 1])):
        held = args.out / "loso" / f"artifact-{s}"
        art = p_fake(held) if (held / "model.json").is_file() else art_all
        members = np.stack([art, blend], 1)
        fit, test = held_out_split(y, src, s)
        fake_only = not ((src == s) & (y == 0)).any()
        row, mrow = {}, {}
        scores = {"artifact": art, "blend": blend}
        for rule, e, mode in variants:
            names = ["artifact", "blend"]
            fusion = fit_fusion(
                members[fit], y[fit], names, rule, sides[fit], [e] if e else [], mode or "platt"
            )
            p = np.zeros(len(y))
            p[test] = fuse(members[test], fusion, sides[test])[0]
            scores[rule + (f"+{mode}" if e else "")] = p
        for name, p in scores.items():
            row[name], mrow[name] = aucs(test, p, fake_only)
        table[s], matched[s] = row, mrow
    cols = ["artifact", "blend"] + [r + (f"+{m}" if e else "") for r, e, m in variants]
    means = {c: float(np.mean([r[c] for r in table.values()])) for c in cols}
    mmeans = {c: float(np.nanmean([r[c] for r in matched.values()])) for c in cols}
    for title, t, mean in (("AUC", table, means), ("size-matched AUC", matched, mmeans)):
        print(f"{title}\n{'held-out source':18s}" + "".join(f"{c:>17s}" for c in cols))
        for s, row in t.items():
            print(f"{s:18s}" + "".join(f"{row[c]:17.3f}" for c in cols))
        print(f"{'mean':18s}" + "".join(f"{mean[c]:17.3f}" for c in cols))
    crit = mmeans if args.criterion == "matched" else means
    # ties go to the simpler choice: max before logistic, no size calibration before size
    best = max(cols[2:], key=lambda c: (crit[c], c.startswith("max"), "+" not in c))
    rule, _, size = best.partition("+")
    print(f"rule: {rule}")
    print(f"size: {size or 'no'}")
    (args.out / "fusion_rule.json").write_text(
        json.dumps(
            {
                "criterion": args.criterion,
                "table": table,
                "mean": means,
                "table_size_matched": matched,
                "mean_size_matched": mmeans,
                "rule": rule,
                "size_mode": size or None,
                "size_edges": list(edges) if size else [],
            },
            indent=1,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
