"""Choose the fused default's rule on val with members that never saw the scored source.

    python experiments/fusion_rule.py work/default [--prepared work/prepared]

`unmask compose --rule auto` holds sources out of the FUSION fit only: its members were
trained on every source, so on val the artifact member already knows each GAN source and
hides how the fusion behaves on a generator nobody trained on. Here, for every val source S
with fakes, the artifact member is OUT/loso/artifact-S when it exists (trained without S;
else OUT/artifact, which never trains on edited fakes) and the blend member is OUT/blend
(never trains on any fake); calibration and fusion are fitted on the val rows of the other
sources (`unmask.evaluation.compose.held_out_split`), and the AUC is measured on S. Prints the
table and the rule with the higher mean; writes OUT/fusion_rule.json. Test rows are never
read.
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
    args = ap.parse_args(argv)

    from unmask.data.manifest import read_manifest
    from unmask.errors import UnmaskError
    from unmask.evaluation.compose import fit_fusion, held_out_split
    from unmask.evaluation.scoring import score_rows
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

    def p_fake(folder: Path) -> np.ndarray:
        return 1.0 - np.asarray(score_rows(load_predictor(folder), df, progress=False))[:, 0]

    blend, art_all = p_fake(args.out / "blend"), p_fake(args.out / "artifact")
    table: dict[str, dict[str, float]] = {}
    for s in sorted(set(src[y == 1])):
        held = args.out / "loso" / f"artifact-{s}"
        art = p_fake(held) if (held / "model.json").is_file() else art_all
        members = np.stack([art, blend], 1)
        fit, test = held_out_split(y, src, s)
        row = {"artifact": roc_auc(y[test], art[test]), "blend": roc_auc(y[test], blend[test])}
        for rule in ("max", "logistic"):
            fusion = fit_fusion(members[fit], y[fit], ["artifact", "blend"], rule)
            row[rule] = roc_auc(y[test], fuse(members[test], fusion)[0])
        table[s] = row
    cols = ["artifact", "blend", "max", "logistic"]
    print(f"{'held-out source':18s}" + "".join(f"{c:>10s}" for c in cols))
    for s, row in table.items():
        print(f"{s:18s}" + "".join(f"{row[c]:10.3f}" for c in cols))
    means = {c: float(np.mean([r[c] for r in table.values()])) for c in cols}
    print(f"{'mean':18s}" + "".join(f"{means[c]:10.3f}" for c in cols))
    best = max(("max", "logistic"), key=lambda r: (means[r], r == "max"))
    print(f"rule: {best}")
    (args.out / "fusion_rule.json").write_text(
        json.dumps({"table": table, "mean": means, "rule": best}, indent=1) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
