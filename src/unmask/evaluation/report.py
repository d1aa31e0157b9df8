"""`unmask eval`: score a data set with a saved model and report, pooled and per source.
(Scoring rows: `evaluation.scoring`; text tables: `evaluation.tables`; PNG plots:
`evaluation.plots`.)

    rows = load_eval_rows("work/prepared", split="test", spec=predictor.spec, work_dir=out)
    report, scores = evaluate(predictor, rows, parse_perturbations(["jpeg:90,50"]))
    write_report(report, scores, out)   # report.json, report.md, scores.csv, *.png

Binary view everywhere: y = 1 for gan and edited ("fake"), score = P(fake) = 1 - P(real),
verdict fake when score >= the model's threshold. A 3-class model also gets the 3x3 table.
Per source: a source with one class gets accuracy (= detection rate for fakes, = true
negative rate for reals) and AUC "n/a". Video level: mean frame score per `group` for groups
with more than one frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.evaluation.perturb import NONE, Perturbation
from unmask.evaluation.plots import plot_report
from unmask.evaluation.scoring import (  # noqa: F401  (score_rows: the Ray engine's entry)
    load_crops,
    score_row_faces,
    score_rows,
    uses_feature_cache,
)
from unmask.evaluation.tables import (  # noqa: F401  (callers import the tables from here)
    format_table,
    markdown_report,
    perturbation_tables,
)
from unmask.metrics import binary_report, multiclass_report, p_fake


# --- data -------------------------------------------------------------------------------
def load_eval_rows(
    data: str | Path,
    split: str | None = "test",
    spec: Any = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
    prepare_options: dict[str, Any] | None = None,
) -> Any:
    """A manifest (CSV or folder holding manifest.csv) -> its rows of `split` (None: all);
    a folder of images laid out `<source>/<label>/` or `<label>/` -> crops made with `spec`
    (the model's preprocessing) into `work_dir/prepared`, all rows. `prepare_options`: more keyword
    arguments for `prepare` on a folder (workers, fmt, the Ray engine's executor)."""
    from unmask.data.manifest import is_manifest, read_manifest

    p = Path(data)
    if not p.exists():
        raise UnmaskError(f"data not found: {p}")
    if is_manifest(p):
        df = read_manifest(p, split=split)
        if len(df) == 0:
            raise UnmaskError(f"{p}: no rows in split {split!r}")
        return df
    if not p.is_dir():
        raise UnmaskError(f"{p}: expected a manifest CSV or a folder")
    from unmask.data.prepare import prepare

    if work_dir is None:
        raise UnmaskError("a folder of images needs a work folder for its crops")
    out = Path(work_dir) / "prepared"
    kwargs = {"assign_split": "test", "progress": progress, **(prepare_options or {})}
    res = prepare(p, out, spec, **kwargs) if spec is not None else prepare(p, out, **kwargs)
    if res.n_rejected:  # said on screen, not only in rejected.csv
        import sys

        print(
            f"warning: {p}: {res.n_rejected} of {res.n_inputs} input(s) not scored (no face, "
            f"unreadable, ...): see {res.rejected_path}",
            file=sys.stderr,
        )
    df = read_manifest(res.manifest_path)
    if len(df) == 0:
        raise UnmaskError(f"{p}: no face crops were made (see {out / 'rejected.csv'})")
    return df


# --- metrics tables ---------------------------------------------------------------------
def _y_fake(labels: Sequence[str]) -> np.ndarray:
    return np.array([lb != "real" for lb in labels], dtype=np.int64)


def group_table(
    labels: np.ndarray, score: np.ndarray, threshold: float, n_boot: int, seed: int
) -> dict[str, Any]:
    y = _y_fake(labels)
    r = binary_report(y, score, threshold, n_boot=n_boot, seed=seed)
    per_label = {}
    for lb in sorted(set(labels)):
        m = labels == lb
        per_label[lb] = {
            "n": int(m.sum()),
            "flagged_fake": float(np.mean(score[m] >= threshold)),
            "mean_score": float(np.mean(score[m])),
        }
    r["per_label"] = per_label
    r["two_classes"] = bool(0 < y.sum() < y.size)
    return r


def video_scores(df: Any, score: np.ndarray) -> Any:
    """Mean frame score per group for groups with more than one video frame (rows with
    `frame` >= 0; still images grouped together for leakage reasons are not videos)."""
    import pandas as pd

    # A video is one input file within its group: the manifest's group is a leakage unit
    # that may hold a real video and its manipulated copies (label differs), so split by
    # `original` and label too.
    key = df["group"].astype(str) + "|" + df["label"].astype(str)
    if "original" in df.columns:
        key = key + "|" + df["original"].astype(str)
    d = pd.DataFrame({"group": key, "label": df["label"], "source": df["source"], "score": score})
    if "frame" in df.columns:
        frame = pd.to_numeric(df["frame"], errors="coerce").fillna(-1).to_numpy()
        d = d[frame >= 0]
    counts = d.groupby("group")["score"].transform("size")
    d = d[counts > 1]
    if d.empty:
        return d
    return (
        d.groupby("group", sort=True)
        .agg(
            label=("label", "first"),
            source=("source", "first"),
            score=("score", "mean"),
            frames=("score", "size"),
        )
        .reset_index()
    )


def evaluate(
    predictor: Any,
    df: Any,
    perturbations: Sequence[Perturbation] = (NONE,),
    batch_size: int = 64,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    feature_cache: str | Path | None = None,
    score_fn: Any = None,
    drivers: dict[str, list[str | None]] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score `df` once per perturbation; returns (report dict, {perturbation: (N, C) proba}).
    `feature_cache`: where classical models cache clean-crop features (e.g. the manifest's
    `.cache/features`). `score_fn`: scores the rows instead (`score_rows`'s signature,
    returning `Scores`: proba and driver; the Ray engine's `unmask.cluster.eval.ray_scorer`),
    reading crops itself. `drivers`: when given, filled with {perturbation: the member that
    drove each row's score} for composite models, as detect reports it."""
    from unmask.inference.saved_model import detector_label

    threshold = float(predictor.threshold)
    classes = tuple(predictor.classes)
    labels = df["label"].to_numpy().astype(str)
    sources = df["source"].to_numpy().astype(str)
    crops = None
    local = score_fn is None
    if local and (any(p != NONE for p in perturbations) or not uses_feature_cache(predictor)):
        crops = load_crops(list(df["abs_path"]), progress)
    report: dict[str, Any] = {
        "model": {
            "detector": detector_label(predictor.meta),
            "classes": list(classes),
            "threshold": threshold,
            "threshold_rule": predictor.meta.get("threshold_rule", ""),
        },
        "n_rows": len(df),
        "counts": {
            s: {lb: int(((sources == s) & (labels == lb)).sum()) for lb in sorted(set(labels))}
            for s in sorted(set(sources))
        },
        "label_mapping": "binary: real = real, gan + edited = fake; score = P(fake) = 1 - P(real)",
        "perturbations": {},
    }
    all_proba: dict[str, np.ndarray] = {}
    for p in perturbations:
        use_cache = p == NONE and uses_feature_cache(predictor)
        scored = None
        if score_fn is not None:  # another engine (Ray): Scores (proba + driver) back
            cached = None if use_cache else crops
            scored = score_fn(predictor, df, p, cached, batch_size, seed, progress, feature_cache)
        elif not use_cache:  # the rows' Faces, as score_rows would: + drivers
            scored = score_row_faces(predictor, df, p, crops, batch_size, seed, progress)
        if scored is not None:
            proba = np.asarray(scored.proba)
            if drivers is not None and any(d is not None for d in scored.driver):
                drivers[p.name] = list(scored.driver)
        else:
            proba = score_rows(predictor, df, p, None, batch_size, seed, progress, feature_cache)
        all_proba[p.name] = proba
        table = _Tables(labels, sources, threshold, n_boot, seed)
        report["perturbations"][p.name] = table.entry(df, proba, classes)
    return report, all_proba


class _Tables:
    """One perturbation's tables of an eval report: pooled, per source, 3-class (when the
    model has three classes) and per video group, all at the model's threshold."""

    def __init__(self, labels, sources, threshold: float, n_boot: int, seed: int) -> None:
        self.labels, self.sources = labels, sources
        self.threshold, self.n_boot, self.seed = threshold, n_boot, seed

    def pooled_and_per_source(self, labels, s, sources) -> dict[str, Any]:
        args = (self.threshold, self.n_boot, self.seed)
        return {
            "pooled": group_table(labels, s, *args),
            "per_source": {
                src: group_table(labels[sources == src], s[sources == src], *args)
                for src in sorted(set(sources))
            },
        }

    def entry(self, df: Any, proba: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
        labels = self.labels
        s = p_fake(proba)
        entry = self.pooled_and_per_source(labels, s, self.sources)
        known = labels != "fake"  # a fake of unknown kind has no 3-class truth
        if len(classes) == 3 and known.any():
            from unmask.labels import label_to_index

            y3 = np.array([label_to_index(lb, 3) for lb in labels[known]])
            entry["multiclass"] = multiclass_report(y3, proba[known], classes)
        v = video_scores(df, s)
        if len(v):
            vl = v["label"].to_numpy().astype(str)
            vsrc = v["source"].to_numpy().astype(str)
            entry["video"] = {
                "n_groups": len(v),
                "frames_per_group": float(v["frames"].mean()),
                **self.pooled_and_per_source(vl, v["score"].to_numpy(), vsrc),
            }
        return entry


def write_report(
    report: dict[str, Any],
    df: Any,
    proba: dict[str, np.ndarray],
    out_dir: str | Path,
    drivers: dict[str, list[str | None]] | None = None,
) -> list[Path]:
    """report.json, report.md, scores.csv and the PNG plots into `out_dir`; scores.csv has a
    `driver` column when `drivers` (from `evaluate`) names the driving members."""
    import pandas as pd

    from unmask.jsonio import dumps

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown_report(report))
    classes = report["model"]["classes"]
    frames = []
    provenance = provenance_column(df)
    for name, pr in proba.items():
        d = pd.DataFrame(
            {
                "path": df["path"],
                "label": df["label"],
                "source": df["source"],
                "group": df["group"],
                "perturbation": name,
                "p_fake": p_fake(pr),
            }
        )
        for i, c in enumerate(classes):
            d[f"p_{c}"] = pr[:, i]
        if drivers:
            d["driver"] = drivers.get(name, [None] * len(d))
        d["provenance"] = provenance
        frames.append(d)
    pd.concat(frames).to_csv(out / "scores.csv", index=False, float_format="%.6g")
    written = [out / "report.json", out / "report.md", out / "scores.csv"]
    written += plot_report(df, proba, report, out)
    return written


def provenance_column(df: Any) -> list[str]:
    """Per row, the provenance summary of the file its crop was cut from (Content
    Credentials and metadata: `unmask.provenance`), read once per file and never from the
    crop: "" for rows `unmask synth` made (their original's credentials do not describe
    them) and where the original is not at hand. Beside the scores, never in them."""
    import os

    from unmask.provenance import read_provenance

    if "original" not in df.columns:
        return [""] * len(df)
    parents = df["parent"] if "parent" in df.columns else [""] * len(df)
    seen: dict[str, str] = {}
    out = []
    for original, parent in zip(df["original"], parents, strict=True):
        if not isinstance(original, str) or not original or (isinstance(parent, str) and parent):
            out.append("")
            continue
        if original not in seen:
            seen[original] = read_provenance(original).summary() if os.path.isfile(original) else ""
        out.append(seen[original])
    return out
