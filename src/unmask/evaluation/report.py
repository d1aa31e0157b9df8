"""`unmask eval`: score a data set with a saved model and report, pooled and per source.

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

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.evaluation.metrics import binary_report, multiclass_report
from unmask.evaluation.perturb import NONE, Perturbation, apply


# --- data -------------------------------------------------------------------------------
def load_eval_rows(
    data: str | Path,
    split: str | None = "test",
    spec: Any = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
) -> Any:
    """A manifest (CSV or folder holding manifest.csv) -> its rows of `split` (None: all);
    a folder of images laid out `<source>/<label>/` or `<label>/` -> crops made with `spec`
    (the model's preprocessing) into `work_dir/prepared`, all rows."""
    from unmask.data.manifest import MANIFEST_NAME, read_manifest

    p = Path(data)
    if not p.exists():
        raise UnmaskError(f"data not found: {p}")
    if p.suffix.lower() == ".csv" or (p / MANIFEST_NAME).is_file():
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
    kwargs = {"assign_split": "test", "progress": progress}
    res = prepare(p, out, spec, **kwargs) if spec is not None else prepare(p, out, **kwargs)
    df = read_manifest(res.manifest_path)
    if len(df) == 0:
        raise UnmaskError(f"{p}: no face crops were made (see {out / 'rejected.csv'})")
    return df


def load_crops(paths: Sequence[str], progress: bool = True) -> list[np.ndarray]:
    from tqdm import tqdm

    from unmask.features.extract import load_rgb

    return [load_rgb(p) for p in tqdm(paths, desc="load crops", unit="img", disable=not progress)]


def _landmarks(df: Any) -> list[np.ndarray | None] | None:
    if "abs_landmarks" not in df.columns or not any(df["landmarks"]):
        return None
    from unmask.data.manifest import load_landmarks

    return [
        load_landmarks(p) if rel else None
        for rel, p in zip(df["landmarks"], df["abs_landmarks"], strict=True)
    ]


def score_rows(
    predictor: Any,
    df: Any,
    perturbation: Perturbation = NONE,
    crops: list[np.ndarray] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    feature_cache: str | Path | None = None,
) -> np.ndarray:
    """(N, C) probabilities for the rows of `df`, crops perturbed first. Classical models on
    clean crops extract features from the files directly (2 processes, cached in
    `feature_cache` when given)."""
    from tqdm import tqdm

    if perturbation == NONE and crops is None and hasattr(predictor, "predict_proba_features"):
        from unmask.features.extract import extract_files

        feats = extract_files(
            list(df["abs_path"]),
            predictor.kind,
            predictor.size,
            cache_dir=feature_cache,
            progress=progress,
            desc="features",
        )
        return predictor.predict_proba_features(feats)
    if crops is None:
        crops = load_crops(list(df["abs_path"]), progress)
    lms = _landmarks(df)
    out = []
    bar = tqdm(
        total=len(crops), desc=f"score {perturbation.name}", unit="img", disable=not progress
    )
    for i in range(0, len(crops), batch_size):
        batch = [
            apply(c, perturbation, seed + i + j) for j, c in enumerate(crops[i : i + batch_size])
        ]
        lm = lms[i : i + batch_size] if lms is not None else None
        out.append(np.asarray(predictor.predict_proba(batch, lm), dtype=np.float64))
        bar.update(len(batch))
    bar.close()
    return np.concatenate(out) if out else np.zeros((0, len(predictor.classes)))


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
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score `df` once per perturbation; returns (report dict, {perturbation: (N, C) proba}).
    `feature_cache`: where classical models cache clean-crop features (e.g. the manifest's
    `.cache/features`)."""
    from unmask.inference.saved_model import detector_label

    threshold = float(predictor.threshold)
    classes = tuple(predictor.classes)
    labels = df["label"].to_numpy().astype(str)
    sources = df["source"].to_numpy().astype(str)
    crops = None
    if any(p != NONE for p in perturbations) or not hasattr(predictor, "predict_proba_features"):
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
        use_cache = p == NONE and hasattr(predictor, "predict_proba_features")
        proba = score_rows(
            predictor,
            df,
            p,
            None if use_cache else crops,
            batch_size,
            seed,
            progress,
            feature_cache,
        )
        all_proba[p.name] = proba
        s = 1.0 - proba[:, 0]
        entry: dict[str, Any] = {
            "pooled": group_table(labels, s, threshold, n_boot, seed),
            "per_source": {
                src: group_table(labels[sources == src], s[sources == src], threshold, n_boot, seed)
                for src in sorted(set(sources))
            },
        }
        if len(classes) == 3:
            from unmask.labels import label_to_index

            y3 = np.array([label_to_index(lb, 3) for lb in labels])
            entry["multiclass"] = multiclass_report(y3, proba, classes)
        v = video_scores(df, s)
        if len(v):
            vl = v["label"].to_numpy().astype(str)
            vs = v["score"].to_numpy()
            vsrc = v["source"].to_numpy().astype(str)
            entry["video"] = {
                "n_groups": len(v),
                "frames_per_group": float(v["frames"].mean()),
                "pooled": group_table(vl, vs, threshold, n_boot, seed),
                "per_source": {
                    src: group_table(vl[vsrc == src], vs[vsrc == src], threshold, n_boot, seed)
                    for src in sorted(set(vsrc))
                },
            }
        report["perturbations"][p.name] = entry
    return report, all_proba


# --- formatting ---------------------------------------------------------------------------
COLUMNS = ("n", "real", "fake", "AUC", "AUC 95% CI", "AP", "EER", "acc", "bal acc", "TPR", "TNR")


def _f(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{nd}f}"


def table_row(name: str, r: dict[str, Any]) -> list[str]:
    two = r.get("two_classes", True)
    ci = r.get("auc_ci") or [math.nan, math.nan]
    return [
        name,
        str(r["n"]),
        str(r["n_real"]),
        str(r["n_fake"]),
        _f(r["auc"]) if two else "n/a",
        f"[{_f(ci[0])}, {_f(ci[1])}]" if two else "n/a",
        _f(r["ap"]) if two else "n/a",
        _f(r["eer"]) if two else "n/a",
        _f(r["accuracy"]),
        _f(r["balanced_accuracy"]) if two else "n/a",
        _f(r["recall"]),
        _f(r["tnr"]),
    ]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], md: bool = False) -> str:
    if md:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(
        [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
        + [fmt.format(*r) for r in rows]
    )


def perturbation_tables(report: dict[str, Any], md: bool = False) -> str:
    parts = []
    for name, e in report["perturbations"].items():
        rows = [table_row("pooled (frames)", e["pooled"])]
        rows += [table_row(src, r) for src, r in e["per_source"].items()]
        if "video" in e:
            v = e["video"]
            rows.append(table_row(f"pooled (videos, {v['n_groups']})", v["pooled"]))
            rows += [table_row(f"{src} (videos)", r) for src, r in v["per_source"].items()]
        title = f"perturbation: {name}"
        parts.append(
            (f"### {title}\n\n" if md else f"{title}\n")
            + format_table(("set",) + COLUMNS, rows, md)
        )
        lab = e["pooled"]["per_label"]
        lrows = [
            [lb, str(d["n"]), _f(d["flagged_fake"]), _f(d["mean_score"])] for lb, d in lab.items()
        ]
        parts.append(format_table(("label", "n", "flagged fake", "mean P(fake)"), lrows, md))
        if "multiclass" in e:
            m = e["multiclass"]
            mrows = [
                [
                    c,
                    _f(d["precision"]),
                    _f(d["recall"]),
                    _f(d["f1"]),
                    _f(d["auc_ovr"]),
                    str(d["support"]),
                ]
                for c, d in m["per_class"].items()
            ]
            parts.append(
                f"3-class: accuracy {_f(m['accuracy'])}, balanced accuracy "
                f"{_f(m['balanced_accuracy'])}, macro F1 {_f(m['macro_f1'])}\n"
                + format_table(("class", "precision", "recall", "F1", "AUC ovr", "n"), mrows, md)
            )
    if len(report["perturbations"]) > 1:
        rows = []
        for name, e in report["perturbations"].items():
            r = e["pooled"]
            rows.append(
                [name, _f(r["auc"]), _f(r["accuracy"]), _f(r["recall"]), _f(r["tnr"])]
                + [
                    _f(x["auc"]) if x["two_classes"] else _f(x["accuracy"])
                    for x in e["per_source"].values()
                ]
            )
        srcs = list(next(iter(report["perturbations"].values()))["per_source"])
        parts.append(
            (
                "### robustness summary\n\n"
                if md
                else "robustness summary "
                "(per source: AUC, or accuracy where a source has one class)\n"
            )
            + format_table(["perturbation", "AUC", "acc", "TPR", "TNR"] + srcs, rows, md)
        )
    return "\n\n".join(parts)


def markdown_report(report: dict[str, Any], title: str = "Evaluation") -> str:
    m = report["model"]
    head = [
        f"# {title}",
        "",
        f"- model: `{m['detector']}` ({', '.join(m['classes'])}), threshold "
        f"{m['threshold']:.4f} ({m['threshold_rule'] or 'as saved'})",
        f"- data: `{report.get('data', '')}` split `{report.get('split', '')}`, "
        f"{report['n_rows']} crops",
        f"- {report['label_mapping']}",
        "- per-source rows with one class: AUC/AP/EER n/a; acc = detection rate (fakes) or "
        "true-negative rate (reals)",
        "",
        "Counts (source: label -> crops): "
        + "; ".join(
            f"{s}: " + ", ".join(f"{k} {v}" for k, v in c.items() if v)
            for s, c in report["counts"].items()
        ),
        "",
        "![ROC](roc.png) ![confusion](confusion.png) ![scores](hist.png)",
        "",
    ]
    return "\n".join(head) + perturbation_tables(report, md=True) + "\n"


# --- plots ------------------------------------------------------------------------------
def plot_report(
    df: Any, proba: dict[str, np.ndarray], report: dict[str, Any], out: Path
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unmask.evaluation.metrics import confusion_matrix, roc_curve

    written = []
    thr = report["model"]["threshold"]
    classes = report["model"]["classes"]
    labels = df["label"].to_numpy().astype(str)
    sources = df["source"].to_numpy().astype(str)
    s = 1.0 - proba["none"][:, 0]
    y = _y_fake(labels)

    fig, ax = plt.subplots(figsize=(6, 5.5))
    for name, mask in [("pooled", np.ones(len(y), bool))] + [
        (src, sources == src) for src in sorted(set(sources))
    ]:
        if 0 < y[mask].sum() < mask.sum():
            fpr, tpr, _ = roc_curve(y[mask], s[mask])
            r = (
                report["perturbations"]["none"]["per_source"].get(name)
                or report["perturbations"]["none"]["pooled"]
            )
            ax.plot(
                fpr,
                tpr,
                lw=2 if name == "pooled" else 1.2,
                label=f"{name} (AUC {r['auc']:.3f}, n={int(mask.sum())})",
            )
    for pname, pr in proba.items():
        if pname == "none":
            continue
        sp = 1.0 - pr[:, 0]
        if 0 < y.sum() < y.size:
            fpr, tpr, _ = roc_curve(y, sp)
            ax.plot(
                fpr,
                tpr,
                ls="--",
                lw=1,
                label=f"pooled, {pname} (AUC {report['perturbations'][pname]['pooled']['auc']:.3f})",
            )
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="false positive rate (reals flagged)",
        ylabel="true positive rate (fakes caught)",
        title=f"ROC: {report['model']['detector']}",
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=110)
    plt.close(fig)
    written.append(out / "roc.png")

    if len(classes) == 3:
        from unmask.labels import label_to_index

        cm = np.array(report["perturbations"]["none"]["multiclass"]["confusion"])
        rows_lab = cols_lab = list(classes)
        _ = label_to_index
    else:
        rows_lab = sorted(
            set(labels),
            key=lambda lb: (
                ("real", "gan", "edited").index(lb) if lb in ("real", "gan", "edited") else 9
            ),
        )
        pred = (s >= thr).astype(int)
        idx = {lb: i for i, lb in enumerate(rows_lab)}
        cm = confusion_matrix([idx[lb] for lb in labels], pred, max(len(rows_lab), 2))[
            : len(rows_lab), :2
        ]
        cols_lab = ["real", "fake"]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if cm[i, j] > cm.max() / 2 else "black",
            )
    ax.set_xticks(range(len(cols_lab)), [f"pred {c}" for c in cols_lab])
    ax.set_yticks(range(len(rows_lab)), [f"true {c}" for c in rows_lab])
    ax.set_title(f"confusion (threshold {thr:.3f})" if len(classes) == 2 else "confusion (arg max)")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)
    written.append(out / "confusion.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    for lb in sorted(set(labels)):
        ax.hist(
            s[labels == lb], bins=bins, alpha=0.5, label=f"{lb} (n={int((labels == lb).sum())})"
        )
    ax.axvline(thr, color="k", ls="--", lw=1, label=f"threshold {thr:.3f}")
    ax.set(xlabel="P(fake)", ylabel="crops", title="score distribution per label")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "hist.png", dpi=110)
    plt.close(fig)
    written.append(out / "hist.png")
    return written


def write_report(
    report: dict[str, Any], df: Any, proba: dict[str, np.ndarray], out_dir: str | Path
) -> list[Path]:
    """report.json, report.md, scores.csv and the PNG plots into `out_dir`."""
    import json

    import pandas as pd

    from unmask.inference.saved_model import _json_default

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def clean(o: Any) -> Any:  # NaN -> null (valid JSON)
        if isinstance(o, float) and math.isnan(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    (out / "report.json").write_text(
        json.dumps(clean(report), indent=2, default=_json_default) + "\n"
    )
    (out / "report.md").write_text(markdown_report(report))
    classes = report["model"]["classes"]
    frames = []
    for name, pr in proba.items():
        d = pd.DataFrame(
            {
                "path": df["path"],
                "label": df["label"],
                "source": df["source"],
                "group": df["group"],
                "perturbation": name,
                "p_fake": 1.0 - pr[:, 0],
            }
        )
        for i, c in enumerate(classes):
            d[f"p_{c}"] = pr[:, i]
        frames.append(d)
    pd.concat(frames).to_csv(out / "scores.csv", index=False, float_format="%.6g")
    written = [out / "report.json", out / "report.md", out / "scores.csv"]
    written += plot_report(df, proba, report, out)
    return written
