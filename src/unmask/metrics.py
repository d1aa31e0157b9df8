"""Detection metrics as pure functions of (y_true, y_score) (NumPy only).

Binary convention: y_true 1 = fake (positive), 0 = real; y_score = P(fake) (higher = more
fake); the verdict is fake when score >= threshold. Multi-class: integer labels 0..K-1 and
an (N, K) probability matrix.

Lives below training and evaluation (both import it): `best_threshold` is the one threshold
rule for every model. Undefined values never crash: a metric that needs both classes returns NaN, and the
`*_report` functions say why in `notes`. NaN or infinite scores are a bug upstream and raise
`ValueError` with the count and the first index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


# --- input checks ---------------------------------------------------------------------
def _check_binary(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but y_score has {s.size}")
    bad = ~np.isfinite(s)
    if bad.any():
        raise ValueError(
            f"y_score contains {int(bad.sum())} NaN/infinite value(s) "
            f"(first at index {int(np.argmax(bad))}); scores must be finite"
        )
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"binary y_true must hold 0/1, got values {np.unique(y)[:5].tolist()}")
    return y.astype(np.int64), s


def one_class_reason(y_true: Any) -> str | None:
    """Why a two-class metric (AUC, EER, AP) is undefined, or None when it is defined."""
    y = np.asarray(y_true)
    if y.size == 0:
        return "no samples"
    if (y == 1).all():
        return "only one class present (fake): AUC is undefined"
    if (y == 0).all():
        return "only one class present (real): AUC is undefined"
    return None


# --- threshold metrics ----------------------------------------------------------------
def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    if yt.shape != yp.shape:
        raise ValueError("y_true and y_pred differ in length")
    k = n_classes or int(max(yt.max(initial=-1), yp.max(initial=-1)) + 1)
    k = max(k, 1)
    return np.bincount(yt * k + yp, minlength=k * k).reshape(k, k)


def accuracy(y_true: Any, y_pred: Any) -> float:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(yt == yp)) if yt.size else math.nan


def per_class_prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where the
    denominator is 0, as scikit-learn's zero_division=0)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    pred = cm.sum(axis=0)
    true = cm.sum(axis=1)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true}


def balanced_accuracy(y_true: Any, y_pred: Any, n_classes: int | None = None) -> float:
    """Mean recall over the classes present in y_true (scikit-learn's definition)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    true = cm.sum(axis=1)
    present = true > 0
    if not present.any():
        return math.nan
    return float(np.mean(np.diag(cm)[present] / true[present]))


# --- ranking metrics ------------------------------------------------------------------
def p_fake(proba: Any) -> np.ndarray:
    """P(fake) = 1 - P(real) from an (N, K) probability matrix (class 0 = real): the score
    every binary metric, threshold and verdict uses."""
    return 1.0 - np.asarray(proba)[:, 0]


def _check_weight(sample_weight: Any, y: np.ndarray) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64).ravel()
    if w.shape != y.shape or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError("weight must be finite, non-negative, one per sample")
    return w


def _ranked_counts(
    y: np.ndarray, s: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """THE ROC kernel under every curve and area here: (tps, fps, thresholds) = the weight
    of positives and of negatives scored at or above each distinct score, highest score
    first. Unit weights when `w` is None (counts then stay exact integers)."""
    if y.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    w = np.ones(y.size) if w is None else w[order]
    idx = np.r_[np.where(np.diff(s))[0], y.size - 1]  # last row of each run of equal scores
    tps = np.cumsum(y * w)[idx]
    fps = np.cumsum((1 - y) * w)[idx]
    return tps, fps, s[idx]


def roc_curve(
    y_true: Any, y_score: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), thresholds decreasing, starting at +inf (point (0, 0)).
    NaN rates for a class that is absent (or has no weight)."""
    y, s = _check_binary(y_true, y_score)
    tps, fps, thr = _ranked_counts(y, s, _check_weight(sample_weight, y))
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    p, n = tps[-1], fps[-1]
    tpr = tps / p if p > 0 else np.full(tps.shape, np.nan)
    fpr = fps / n if n > 0 else np.full(fps.shape, np.nan)
    return fpr, tpr, np.r_[np.inf, thr]


def roc_auc(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """Area under the ROC curve: the (weighted) share of (positive, negative) pairs ranked
    right, ties counting 1/2 (the Mann-Whitney statistic; a pair weighs w_pos * w_neg, so an
    integer weight counts a sample that many times). NaN when either class is absent or has
    no weight (see `one_class_reason`)."""
    y, s = _check_binary(y_true, y_score)
    tps, fps, _ = _ranked_counts(y, s, _check_weight(sample_weight, y))
    if tps.size == 0 or tps[-1] <= 0 or fps[-1] <= 0:
        return math.nan
    # trapezoids between consecutive ROC points, in pair units: one division at the end, so
    # with unit weights the numerator is an exact half-integer
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    pairs = np.sum(np.diff(fps) * (tps[1:] + tps[:-1])) / 2
    return float(pairs / (tps[-1] * fps[-1]))


def average_precision(y_true: Any, y_score: Any) -> float:
    """AP = sum_n (R_n - R_{n-1}) P_n over distinct thresholds (scikit-learn's definition,
    no interpolation). NaN when there is no positive."""
    y, s = _check_binary(y_true, y_score)
    if y.sum() == 0:
        return math.nan
    tps, fps, _ = _ranked_counts(y, s, None)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def eer(y_true: Any, y_score: Any) -> float:
    """Equal error rate: where the false positive rate equals the false negative rate,
    linearly interpolated between ROC points. NaN with one class only."""
    y, s = _check_binary(y_true, y_score)
    if one_class_reason(y):
        return math.nan
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1.0 - tpr
    diff = fpr - fnr  # increases from -1 to +1 along the curve
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i])
    d0, d1 = diff[i - 1], diff[i]
    t = d0 / (d0 - d1)
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def bootstrap_ci(
    y_true: Any,
    y_score: Any,
    metric: Callable[[np.ndarray, np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of `metric(y, s)` (resampling rows with replacement, seeded).
    Resamples where the metric is NaN (e.g. one class drawn) are skipped; (NaN, NaN) when
    fewer than 10 resamples are usable."""
    y = np.asarray(y_true)
    s = np.asarray(y_score)
    if y.size == 0 or n_boot <= 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, y.size, y.size)
        v = metric(y[idx], s[idx])
        if not math.isnan(v):
            vals.append(v)
    if len(vals) < 10:
        return (math.nan, math.nan)
    lo, hi = np.quantile(vals, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


# --- reports --------------------------------------------------------------------------
def _per_class(prf: dict[str, Any], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`per_class_prf` output as {class name: {precision, recall, f1, support}}."""
    return {
        name: {
            "precision": float(prf["precision"][i]),
            "recall": float(prf["recall"][i]),
            "f1": float(prf["f1"][i]),
            "support": int(prf["support"][i]),
        }
        for i, name in enumerate(names)
    }


def binary_report(
    y_true: Any,
    y_score: Any,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every binary metric at once (real = 0, fake = 1), JSON-serialisable.

    Keys: n, n_real, n_fake, threshold, accuracy (+ accuracy_ci), balanced_accuracy,
    precision/recall/f1 (fake = positive), tnr (real recall), per_class, macro_f1, auc
    (+ auc_ci), ap, eer, confusion ([[TN, FP], [FN, TP]]), notes (why values are NaN).
    """
    y, s = _check_binary(y_true, y_score)
    pred = (s >= threshold).astype(np.int64)
    cm = confusion_matrix(y, pred, 2)
    prf = per_class_prf(cm)
    notes: list[str] = []
    reason = one_class_reason(y)
    if reason:
        notes.append(reason)
    if y.size and np.ptp(s) == 0:
        notes.append("all scores are equal: the ranking carries no information")
    auc = roc_auc(y, s)
    acc = accuracy(y, pred)
    out: dict[str, Any] = {
        "n": int(y.size),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "threshold": float(threshold),
        "accuracy": acc,
        "accuracy_ci": list(
            bootstrap_ci(y, pred, accuracy, n_boot=n_boot, seed=seed) if y.size else (math.nan,) * 2
        ),
        "balanced_accuracy": balanced_accuracy(y, pred, 2),
        "precision": float(prf["precision"][1]),
        "recall": float(prf["recall"][1]) if (y == 1).any() else math.nan,
        "tnr": float(prf["recall"][0]) if (y == 0).any() else math.nan,
        "f1": float(prf["f1"][1]),
        "macro_f1": float(np.mean(prf["f1"])),
        "per_class": _per_class(prf, ("real", "fake")),
        "auc": auc,
        "auc_ci": list(
            bootstrap_ci(y, s, roc_auc, n_boot=n_boot, seed=seed) if not reason else (math.nan,) * 2
        ),
        "ap": average_precision(y, s),
        "eer": eer(y, s),
        "confusion": cm.tolist(),
        "notes": notes,
    }
    return out


def multiclass_report(
    y_true: Any, proba: Any, classes: Sequence[str], n_boot: int = 0, seed: int = 0
) -> dict[str, Any]:
    """K-class metrics from (N, K) probabilities: arg-max accuracy, balanced accuracy,
    per-class and macro precision/recall/F1, one-vs-rest AUC per class (NaN + note when a
    class is absent or alone), macro OvR AUC over the defined ones, K x K confusion."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    if p.ndim != 2 or p.shape != (y.size, k):
        raise ValueError(f"proba must be ({y.size}, {k}), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("proba contains NaN/infinite values")
    pred = p.argmax(axis=1)
    cm = confusion_matrix(y, pred, k)
    prf = per_class_prf(cm)
    notes = []
    aucs = {}
    for i, name in enumerate(classes):
        yi = (y == i).astype(np.int64)
        r = one_class_reason(yi)
        if r:
            notes.append(f"{name} vs rest: {'class absent' if yi.sum() == 0 else 'no other class'}")
        aucs[name] = roc_auc(yi, p[:, i])
    defined = [v for v in aucs.values() if not math.isnan(v)]
    return {
        "n": int(y.size),
        "classes": list(classes),
        "accuracy": accuracy(y, pred),
        "accuracy_ci": list(bootstrap_ci(y, pred, accuracy, n_boot=n_boot, seed=seed)),
        "balanced_accuracy": balanced_accuracy(y, pred, k),
        "per_class": {
            name: {**row, "auc_ovr": aucs[name]} for name, row in _per_class(prf, classes).items()
        },
        "macro_precision": float(np.mean(prf["precision"])),
        "macro_recall": float(np.mean(prf["recall"])),
        "macro_f1": float(np.mean(prf["f1"])),
        "macro_auc_ovr": float(np.mean(defined)) if defined else math.nan,
        "confusion": cm.tolist(),
        "notes": notes,
    }


THRESHOLD_RULE = "youden_j_val: maximise balanced accuracy (Youden's J) on the validation split"


def best_threshold(y_true: Any, y_score: Any) -> tuple[float, str]:
    """THE threshold rule of the project (CNN, classical and composite models alike): the
    threshold maximising balanced accuracy (= Youden's J / 2 + 1/2) on validation (y, s).

    Candidates are the midpoints between consecutive distinct scores (plus just below the
    lowest and above the highest), so the verdict `s >= t` is stable under tiny score
    changes; ties go to the candidate closest to 0.5. With one class only, returns 0.5."""
    y, s = _check_binary(y_true, y_score)
    if one_class_reason(y):
        return 0.5, "0.5 (validation holds one class only)"
    u = np.unique(s)
    cands = np.r_[u[0] - 1e-6, (u[:-1] + u[1:]) / 2, u[-1] + 1e-6]
    cands = np.clip(cands, 0.0, 1.0) if (s.min() >= 0 and s.max() <= 1) else cands
    best, best_t = -1.0, 0.5
    for t in cands:
        ba = balanced_accuracy(y, (s >= t).astype(np.int64), 2)
        if ba > best + 1e-12 or (abs(ba - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = ba, float(t)
    return best_t, THRESHOLD_RULE


def fpr_rule(max_fpr: float) -> str:
    return (
        f"fpr_cap_val: maximise balanced accuracy on the validation split among the thresholds "
        f"that flag at most {max_fpr:.0%} of the reals of every real source (each source alike)"
    )


def fpr_capped_threshold(
    y_true: Any, y_score: Any, groups: Any, max_fpr: float = 0.05
) -> tuple[float, str]:
    """The verdict threshold that protects real photos: the lowest `t` at which no group's
    reals (`groups`: the source of each row) are flagged (`s >= t`) more than `max_fpr` of
    the time, raised further only where balanced accuracy on (y, s) improves.

    Every real source counts alike, however many rows it has: a large easy source cannot
    buy a small hard one's false positives (Youden's J on the pooled reals flagged 91% of
    one shared source). With one class only, returns 0.5 as `best_threshold` does."""
    y, s = _check_binary(y_true, y_score)
    g = np.asarray(groups).astype(str)
    if g.shape != y.shape:
        raise ValueError("groups must give one source per row")
    if not 0.0 <= max_fpr < 1.0:
        raise ValueError(f"max_fpr must be in [0, 1), got {max_fpr}")
    if one_class_reason(y):
        return 0.5, "0.5 (validation holds one class only)"
    floor = -np.inf
    for src in np.unique(g[y == 0]):
        real = np.sort(s[(y == 0) & (g == src)])[::-1]
        k = int(math.floor(max_fpr * real.size + 1e-9))  # reals of src allowed at or above t
        if k < real.size:  # strictly above the (k+1)-th highest real score of src
            floor = max(floor, float(np.nextafter(real[k], np.inf)))
    u = np.unique(s)
    cands = np.r_[u[0] - 1e-6, (u[:-1] + u[1:]) / 2, u[-1] + 1e-6]
    cands = np.unique(np.r_[cands[cands >= floor], floor if np.isfinite(floor) else cands[0]])
    best, best_t = -1.0, float(cands[0])
    for t in cands:
        ba = balanced_accuracy(y, (s >= t).astype(np.int64), 2)
        if ba > best + 1e-12:
            best, best_t = ba, float(t)
    return best_t, fpr_rule(max_fpr)


def tpr_at_fpr(y_true: Any, y_score: Any, fpr: float) -> float:
    """Detection rate at the operating point where at most `fpr` of the reals are flagged:
    threshold = the smallest score that flags at most floor(fpr * n_real) reals (verdict
    `s >= t`); NaN with one class."""
    y, s = _check_binary(y_true, y_score)
    if one_class_reason(y):
        return math.nan
    neg = np.sort(s[y == 0])[::-1]
    k = int(math.floor(fpr * neg.size + 1e-9))  # reals allowed above the threshold
    # strictly above the (k+1)-th highest real score, so at most k reals reach it
    t = np.nextafter(neg[k], np.inf) if k < neg.size else -np.inf
    return float(np.mean(s[y == 1] >= t))


def expected_calibration_error(y_true: Any, y_prob: Any, bins: int = 10) -> float:
    """ECE of P(fake): sum over equal-width probability bins of (bin share) x
    |fraction fake in bin - mean P(fake) in bin|. 0 = perfectly calibrated."""
    y, p = _check_binary(y_true, y_prob)
    if y.size == 0:
        return math.nan
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(total)


def weighted_roc_auc(y_true: Any, y_score: Any, weight: Any) -> float:
    """`roc_auc` with a weight per sample (kept for its callers)."""
    return roc_auc(y_true, y_score, sample_weight=weight)


def matching_weights(
    values: Any, target: Any, bins_per_octave: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Weights that give `values` the distribution of `target` over log-spaced bins
    (`bins_per_octave` bins per doubling), for comparing two groups that differ in a
    nuisance variable such as face size. Returns (weights for `values`, which `target`
    items fall in a bin that `values` reach); target items outside those bins cannot be
    matched. Values must be positive and finite."""
    v = np.asarray(values, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    for a in (v, t):
        if not np.all(np.isfinite(a)) or (a <= 0).any():
            raise ValueError("matching needs positive, finite values")
    if bins_per_octave < 1:
        raise ValueError("bins_per_octave must be >= 1")
    bv = np.floor(np.log2(v) * bins_per_octave).astype(np.int64)
    bt = np.floor(np.log2(t) * bins_per_octave).astype(np.int64)
    have, count = np.unique(bv, return_counts=True)
    covered = np.isin(bt, have)
    kept, kept_n = np.unique(bt[covered], return_counts=True)
    want = dict(zip(kept, kept_n / max(int(covered.sum()), 1), strict=True))
    share = dict(zip(have, count / v.size, strict=True))
    w = np.array([want.get(b, 0.0) / share[b] for b in bv])
    return w, covered
