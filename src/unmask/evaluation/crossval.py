"""Leave-one-source-out cross-validation (`unmask crossval CONFIG --by source`).

For each source S of the manifest: train with `data.exclude_sources += (S,)` (train and val
never see S), then score every source with that model: all rows of S (every split, it was
never seen) and the test split of the others. The result is a matrix rows = held-out source,
columns = scored source; the diagonal is the cross-source figure. A cell is the AUC when the
scored rows hold both real and fake, else the accuracy of the verdicts at the model's
threshold (detection rate for an all-fake source, true negative rate for an all-real one).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.training.config import TrainConfig


def cell(report_entry: dict[str, Any]) -> dict[str, Any]:
    if report_entry["two_classes"]:
        return {"metric": "auc", "value": report_entry["auc"], "n": report_entry["n"]}
    return {"metric": "accuracy", "value": report_entry["accuracy"], "n": report_entry["n"]}


def crossval(
    cfg: TrainConfig, out_dir: str | Path, by: str = "source", progress: bool = True
) -> dict[str, Any]:
    from unmask.data.manifest import manifest_path, read_manifest
    from unmask.evaluation.report import evaluate
    from unmask.inference.loader import load_predictor
    from unmask.training.run import train

    if by != "source":
        raise UnmaskError(f"crossval --by {by!r}: only 'source' is supported")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = read_manifest(cfg.data.manifest)
    sources = sorted(set(df["source"]) - set(cfg.data.exclude_sources))
    if cfg.data.sources:
        sources = [s for s in sources if s in cfg.data.sources]
    if len(sources) < 2:
        raise UnmaskError(f"leave-one-source-out needs >= 2 sources, manifest has {sources}")
    cache = manifest_path(cfg.data.manifest).parent / ".cache" / "features"
    matrix: dict[str, dict[str, Any]] = {}
    for held in sources:
        print(f"== hold out {held}")
        c = dataclasses.replace(
            cfg,
            data=dataclasses.replace(
                cfg.data, exclude_sources=tuple(cfg.data.exclude_sources) + (held,)
            ),
            output=str(out / held / "model"),
        )
        row: dict[str, Any] = {}
        try:
            model_dir = train(c)
        except UnmaskError as exc:
            print(f"   skipped: {exc}")
            matrix[held] = {"error": str(exc)}
            continue
        pred = load_predictor(model_dir)
        for target in sources:
            rows = (
                df[df["source"] == target]
                if target == held
                else df[(df["source"] == target) & (df["split"] == "test")]
            )
            if len(rows) == 0:
                row[target] = {"metric": "none", "value": math.nan, "n": 0}
                continue
            rep, _ = evaluate(
                pred, rows.reset_index(drop=True), n_boot=0, progress=progress, feature_cache=cache
            )
            row[target] = cell(rep["perturbations"]["none"]["pooled"])
        matrix[held] = row
    result = {
        "by": by,
        "sources": sources,
        "detector": cfg.detector.name,
        "matrix": matrix,
        "cell": "AUC where both classes, else accuracy at the model's threshold",
    }
    write_crossval(result, out)
    return result


def format_matrix(result: dict[str, Any], md: bool = False) -> str:
    from unmask.evaluation.tables import format_table

    srcs = result["sources"]
    rows = []
    for held in srcs:
        r = result["matrix"].get(held, {})
        if "error" in r:
            rows.append([held] + ["skipped"] * len(srcs))
            continue
        vals = []
        for t in srcs:
            c = r.get(t, {"metric": "none", "value": math.nan})
            v = c["value"]
            s = "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
            tag = "" if c["metric"] == "auc" else (" (acc)" if c["metric"] == "accuracy" else "")
            vals.append(("*" if t == held else "") + s + tag)
        rows.append([held] + vals)
    return format_table(["held out \\ scored"] + srcs, rows, md)


def write_crossval(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unmask.jsonio import dumps

    (out / "crossval.json").write_text(dumps(result, indent=2) + "\n")
    (out / "crossval.md").write_text(
        f"# Leave-one-source-out: {result['detector']}\n\n{result['cell']}; * = held-out "
        f"source (all its rows); (acc) = one class only.\n\n"
        + format_matrix(result, md=True)
        + "\n"
    )
    srcs = result["sources"]
    m = np.full((len(srcs), len(srcs)), np.nan)
    for i, h in enumerate(srcs):
        for j, t in enumerate(srcs):
            v = result["matrix"].get(h, {}).get(t, {}).get("value")
            if v is not None:
                m[i, j] = v
    fig, ax = plt.subplots(figsize=(1.3 * len(srcs) + 2, 1.0 * len(srcs) + 1.5))
    ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
    for i in range(len(srcs)):
        for j in range(len(srcs)):
            c = result["matrix"].get(srcs[i], {}).get(srcs[j], {})
            if not math.isnan(m[i, j]):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}" + ("\nacc" if c.get("metric") == "accuracy" else ""),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if m[i, j] > 0.5 else "white",
                )
    ax.set_xticks(range(len(srcs)), srcs, rotation=30, ha="right")
    ax.set_yticks(range(len(srcs)), srcs)
    ax.set(
        xlabel="scored source",
        ylabel="held-out source",
        title=f"leave-one-source-out: {result['detector']}",
    )
    fig.tight_layout()
    fig.savefig(out / "crossval.png", dpi=110)
    plt.close(fig)
