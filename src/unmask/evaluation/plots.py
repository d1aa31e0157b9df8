"""Evaluation reports as PNG (matplotlib, Agg backend): ROC curves, score histograms,
per-source bars, confusion matrices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_report(
    df: Any, proba: dict[str, np.ndarray], report: dict[str, Any], out: Path
) -> list[Path]:
    """roc.png, confusion.png and hist.png of an eval report; their paths."""
    import matplotlib

    matplotlib.use("Agg")

    from unmask.metrics import p_fake

    labels = df["label"].to_numpy().astype(str)
    s = p_fake(proba["none"])
    y = (labels != "real").astype(np.int64)
    sources = df["source"].to_numpy().astype(str)
    return [
        _plot_roc(y, s, sources, proba, report, out / "roc.png"),
        _plot_confusion(labels, s, report, out / "confusion.png"),
        _plot_hist(labels, s, report["model"]["threshold"], out / "hist.png"),
    ]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_roc(y, s, sources, proba: dict[str, np.ndarray], report: dict[str, Any], path: Path):
    """Clean ROC pooled and per source (each with both classes), and pooled per perturbation."""
    import matplotlib.pyplot as plt

    from unmask.metrics import p_fake, roc_curve

    clean = report["perturbations"]["none"]
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for name, mask in [("pooled", np.ones(len(y), bool))] + [
        (src, sources == src) for src in sorted(set(sources))
    ]:
        if 0 < y[mask].sum() < mask.sum():
            fpr, tpr, _ = roc_curve(y[mask], s[mask])
            r = clean["per_source"].get(name) or clean["pooled"]
            ax.plot(
                fpr,
                tpr,
                lw=2 if name == "pooled" else 1.2,
                label=f"{name} (AUC {r['auc']:.3f}, n={int(mask.sum())})",
            )
    for pname, pr in proba.items():
        if pname == "none" or not 0 < y.sum() < y.size:
            continue
        fpr, tpr, _ = roc_curve(y, p_fake(pr))
        auc = report["perturbations"][pname]["pooled"]["auc"]
        ax.plot(fpr, tpr, ls="--", lw=1, label=f"pooled, {pname} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="false positive rate (reals flagged)",
        ylabel="true positive rate (fakes caught)",
        title=f"ROC: {report['model']['detector']}",
    )
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _confusion_counts(labels, s, report: dict[str, Any]):
    """(counts, row labels, column labels): 3-class models by arg max (from the report),
    binary ones by label (real, gan, edited, others) x verdict at the threshold."""
    from unmask.metrics import confusion_matrix

    classes = report["model"]["classes"]
    if len(classes) == 3:
        cm = np.array(report["perturbations"]["none"]["multiclass"]["confusion"])
        return cm, list(classes), list(classes)
    known = ("real", "gan", "edited")
    rows_lab = sorted(set(labels), key=lambda lb: known.index(lb) if lb in known else 9)
    pred = (s >= report["model"]["threshold"]).astype(int)
    idx = {lb: i for i, lb in enumerate(rows_lab)}
    cm = confusion_matrix([idx[lb] for lb in labels], pred, max(len(rows_lab), 2))
    return cm[: len(rows_lab), :2], rows_lab, ["real", "fake"]


def _plot_confusion(labels, s, report: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    cm, rows_lab, cols_lab = _confusion_counts(labels, s, report)
    thr = report["model"]["threshold"]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            color = "white" if cm[i, j] > cm.max() / 2 else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color)
    ax.set_xticks(range(len(cols_lab)), [f"pred {c}" for c in cols_lab])
    ax.set_yticks(range(len(rows_lab)), [f"true {c}" for c in rows_lab])
    binary = len(report["model"]["classes"]) == 2
    ax.set_title(f"confusion (threshold {thr:.3f})" if binary else "confusion (arg max)")
    return _save(fig, path)


def _plot_hist(labels, s, thr: float, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    for lb in sorted(set(labels)):
        ax.hist(
            s[labels == lb], bins=bins, alpha=0.5, label=f"{lb} (n={int((labels == lb).sum())})"
        )
    ax.axvline(thr, color="k", ls="--", lw=1, label=f"threshold {thr:.3f}")
    ax.set(xlabel="P(fake)", ylabel="crops", title="score distribution per label")
    ax.legend(fontsize=8)
    return _save(fig, path)
