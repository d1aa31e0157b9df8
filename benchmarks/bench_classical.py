"""Training time of every classical detector on the prepared shared data.

    .venv/bin/python benchmarks/bench_classical.py [--manifest work/prepared/manifest.csv]

Runs `train_classical` for each detector into a temporary folder (features come from the
manifest's cache after the first run; the first run's extraction time is printed apart) and
prints total time, the fit time of each grid point and the validation AUC.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from unmask.config import from_dict
from unmask.training.classical import train_classical
from unmask.training.config import TrainConfig

DETECTORS = ("spectrum-logreg", "spectrum-svm", "dct-ridge", "dct-logreg")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", default="work/prepared/manifest.csv")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--detectors", nargs="*", default=list(DETECTORS))
    args = ap.parse_args()
    if not Path(args.manifest).is_file():
        raise SystemExit(f"manifest not found: {args.manifest} (run `unmask prepare` first)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.detectors:
            cfg = from_dict(
                TrainConfig,
                {
                    "data": {"manifest": args.manifest},
                    "detector": {"name": name},
                    "classical": {"feature_size": args.size},
                    "output": f"{tmp}/{name}",
                },
            )
            t = time.perf_counter()
            out = train_classical(cfg, progress=False)
            total = time.perf_counter() - t
            meta = json.loads((out / "model.json").read_text())
            fits = [r["fit_seconds"] for r in meta["selection"]["results"]]
            rows.append(
                (
                    name,
                    total,
                    sum(fits),
                    len(fits),
                    meta["metrics"]["val"]["auc"],
                    meta["data"]["n_train"],
                )
            )
    print(
        f"{'detector':<17}{'total s':>9}{'fit s (grid)':>14}{'points':>8}{'val AUC':>9}{'n train':>9}"
    )
    for name, total, fit, n, auc, ntr in rows:
        print(f"{name:<17}{total:>9.1f}{fit:>14.1f}{n:>8}{auc:>9.4f}{ntr:>9}")


if __name__ == "__main__":
    main()
