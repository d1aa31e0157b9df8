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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unmask.metrics import confusion_matrix, p_fake, roc_curve

    written = []
    thr = report["model"]["threshold"]
    classes = report["model"]["classes"]
    labels = df["label"].to_numpy().astype(str)
    sources = df["source"].to_numpy().astype(str)
    s = p_fake(proba["none"])
    y = (labels != "real").astype(np.int64)

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
        sp = p_fake(pr)
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
