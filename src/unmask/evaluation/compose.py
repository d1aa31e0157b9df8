"""Build a composite model from member model folders, fitted on a validation split.

    out = compose_models(["work/models/artifact", "work/models/blend"], ["artifact", "blend"],
                         "work/prepared", rule="auto", out="work/models/combo")

1. every member scores the manifest's `val` rows (each from its own input: crop, landmarks,
   or native-pixel tiles cut from the row's original), giving P_i(fake);
2. per member, Platt calibration on its logit: z_i = a_i * logit(P_i) + b_i (logistic
   regression of the fake label on logit(P_i), L2 C=1, fitted on val); with
   `size_edges={name: [200, 400]}`, that member per face-size bin too (crop-box side in
   native pixels; `size_calibration`: its own class-balanced fit, or silent where val shows
   no evidence). On the shared data both measured worse on held-out sources (issue 13);
   the default does not use them;
3. the fusion rule: "max" (score = max_i sigmoid(z_i)) or "logistic" (stacking: logistic
   regression on the z_i, weights + bias, fitted on val). "auto" picks the rule with the
   higher mean AUC on val sources held out of the fit (leave-one-source-out: a default
   model is for sources it never saw), when val holds fakes of two or more sources; else
   the lower 5-fold cross-validated log-loss (every fold refits calibration and stacking
   on the other four), ties to the higher cross-validated AUC, then to "max";
4. the threshold: the project's one rule (`unmask.metrics.best_threshold`) on the fused val
   scores;
5. the folder: `model.json` (kind composite) + `members/<name>/` (each member re-written
   through the one writer, weights copied byte for byte). The test split is never read.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError

RULES = ("max", "logistic", "auto")
# Fewest val faces of each class in a size bin for its own calibration (else the member's).
MIN_PER_CLASS = 20
SIZE_MODES = ("platt", "abstain")
# An abstaining member's calibrated logit under the max rule: P(fake) ~ 1e-13, never the max.
ABSTAIN = 30.0
# L2 strength of calibration and stacking (sklearn's default C): on a small or separable
# val split an unregularised fit sends a, b and the weights to infinity.
_C = 1.0


def _logreg(x: np.ndarray, y: np.ndarray, balanced: bool = False) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=_C, max_iter=1000, class_weight="balanced" if balanced else None)
    lr.fit(x, y)
    return lr.coef_[0].astype(float), float(lr.intercept_[0])


def size_calibration(
    z: np.ndarray,
    y: np.ndarray,
    sides: np.ndarray,
    edges: Sequence[float],
    a: float,
    b: float,
    mode: str = "platt",
    rule: str = "max",
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(a_k, b_k) per face-size bin (k = #{edges <= side}) of one member's logit `z`.

    "platt": Platt fitted in each bin with balanced class weights, so that a bin's share
    of fakes in val (large faces are mostly synthesised in the shared data) never becomes
    evidence. "abstain": the member keeps its overall (a, b) where val shows it separates
    the classes in that bin (bootstrap 95% lower bound of the bin's AUC above 1/2) and is
    silent elsewhere: z = -ABSTAIN under the max rule (never the maximum), 0 under
    stacking (adds nothing). A bin with fewer than `MIN_PER_CLASS` faces of either class
    keeps (a, b) in both modes."""
    if mode not in SIZE_MODES:
        raise UnmaskError(f"size calibration mode must be one of {', '.join(SIZE_MODES)}")
    from unmask.metrics import bootstrap_ci, roc_auc

    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), sides, "right")
    out_a, out_b = [], []
    for k in range(len(edges) + 1):
        in_bin = bins == k
        ak, bk = float(a), float(b)
        if min((y[in_bin] == 0).sum(), (y[in_bin] == 1).sum()) >= MIN_PER_CLASS:
            if mode == "platt":
                (ak,), bk = _logreg(z[in_bin, None], y[in_bin], balanced=True)
            elif bootstrap_ci(y[in_bin], z[in_bin], roc_auc, n_boot=200)[0] <= 0.5:
                ak, bk = 0.0, (-ABSTAIN if rule == "max" else 0.0)
        out_a.append(float(ak))
        out_b.append(float(bk))
    return tuple(out_a), tuple(out_b)


def fit_fusion(
    p_fake: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    rule: str,
    sides: np.ndarray | None = None,
    size_edges: Sequence[Sequence[float]] = (),
    size_mode: str = "platt",
) -> Any:
    """(N, M) member P(fake) + labels -> a `Fusion` of `rule` ("max" or "logistic").
    `size_edges[i]` (non-empty) calibrates member i per face size on `sides` (crop-box
    sides in native pixels), as `size_mode` says (`size_calibration`)."""
    from unmask.inference.composite import logit
    from unmask.modelfile import Fusion, FusionMember

    members = []
    for i, name in enumerate(names):
        z = logit(p_fake[:, i])
        (a,), b = _logreg(z[:, None], y)
        edges = tuple(float(e) for e in size_edges[i]) if i < len(size_edges) else ()
        if edges and sides is not None:
            sd = np.asarray(sides, np.float64)
            sa, sb = size_calibration(z, y, sd, edges, a, b, size_mode, rule)
            members.append(
                FusionMember(name=name, a=float(a), b=b, size_edges=edges, size_a=sa, size_b=sb)
            )
        else:
            members.append(FusionMember(name=name, a=float(a), b=b))
    fusion = Fusion(rule="max", members=tuple(members))
    if rule == "max":
        return fusion
    from dataclasses import replace

    from unmask.inference.composite import calibrated_logits

    w, bias = _logreg(calibrated_logits(p_fake, fusion, sides), y)
    members = [replace(m, weight=float(wi)) for m, wi in zip(members, w, strict=True)]
    return Fusion(rule="logistic", members=tuple(members), bias=bias)


def cross_validated(
    p_fake: np.ndarray,
    y: np.ndarray,
    rule: str,
    folds: int = 5,
    seed: int = 0,
    sides: np.ndarray | None = None,
    size_edges: Sequence[Sequence[float]] = (),
    size_mode: str = "platt",
):
    """Out-of-fold fused scores of `rule` on (p_fake, y): calibration and stacking refitted
    on the other folds each time. Returns (log-loss, AUC)."""
    from sklearn.model_selection import StratifiedKFold

    from unmask.inference.composite import fuse
    from unmask.metrics import roc_auc

    k = int(min(folds, np.bincount(y).min()))
    if k < 2:
        return float("inf"), float("nan")
    oof = np.zeros(len(y))
    names = [f"m{i}" for i in range(p_fake.shape[1])]
    sd = None if sides is None else np.asarray(sides, np.float64)
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(p_fake, y):
        fusion = fit_fusion(p_fake[tr], y[tr], names, rule, _take(sd, tr), size_edges, size_mode)
        oof[te] = fuse(p_fake[te], fusion, _take(sd, te))[0]
    s = np.clip(oof, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(s) + (1 - y) * np.log(1 - s)))
    return loss, roc_auc(y, oof)


def held_out_split(y: np.ndarray, sources: np.ndarray, held: str) -> tuple[np.ndarray, np.ndarray]:
    """(fit, test) row masks for holding `held` out: fit on every other source's rows; test
    on `held`'s rows, or, when it has fakes only, on its fakes and every real."""
    own = sources == held
    fake_only = not (own & (y == 0)).any()
    return ~own, (own | (y == 0)) if fake_only else own


def _take(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if a is None else a[rows]


def held_out_source_aucs(
    p_fake: np.ndarray,
    y: np.ndarray,
    sources: np.ndarray,
    rule: str,
    sides: np.ndarray | None = None,
    size_edges: Sequence[Sequence[float]] = (),
    size_mode: str = "platt",
) -> dict[str, float]:
    """Leave-one-source-out on val: for every source S with fakes, calibration and fusion
    fitted without S, then the AUC on S (S's fakes vs S's reals; a source with fakes only
    against the reals of every source, the fit then leaving out S's fakes only)."""
    from unmask.inference.composite import fuse
    from unmask.metrics import roc_auc

    names = [f"m{i}" for i in range(p_fake.shape[1])]
    out: dict[str, float] = {}
    for s in sorted(set(sources[y == 1])):
        fit, test = held_out_split(y, sources, s)
        if not 0 < y[fit].sum() < fit.sum() or not 0 < y[test].sum() < test.sum():
            continue
        fit_sides = _take(sides, fit)
        fusion = fit_fusion(p_fake[fit], y[fit], names, rule, fit_sides, size_edges, size_mode)
        out[str(s)] = roc_auc(y[test], fuse(p_fake[test], fusion, _take(sides, test))[0])
    return out


def choose_rule(
    p_fake: np.ndarray,
    y: np.ndarray,
    sources: np.ndarray | None = None,
    sides: np.ndarray | None = None,
    size_edges: Sequence[Sequence[float]] = (),
    size_mode: str = "platt",
) -> tuple[str, dict[str, Any]]:
    """ "auto". With two or more sources holding fakes: the rule with the higher mean
    held-out-source AUC on val (`held_out_source_aucs`), which is what a default model is
    for: sources it never saw. Otherwise (or on a tie): the lower 5-fold cross-validated
    log-loss, then the higher cross-validated AUC, then "max"."""
    cv = {
        r: cross_validated(p_fake, y, r, sides=sides, size_edges=size_edges, size_mode=size_mode)
        for r in ("max", "logistic")
    }
    record: dict[str, Any] = {
        r: {"cv_log_loss": loss, "cv_auc": auc} for r, (loss, auc) in cv.items()
    }
    loso_mean = {"max": 0.0, "logistic": 0.0}
    if sources is not None:
        for r in ("max", "logistic"):
            per = held_out_source_aucs(
                p_fake, y, np.asarray(sources).astype(str), r, sides, size_edges, size_mode
            )
            record[r]["held_out_source_auc"] = per
            loso_mean[r] = float(np.mean(list(per.values()))) if len(per) >= 2 else 0.0
    by_loso = any(loso_mean.values())
    best = min(
        cv,
        key=lambda r: (
            -round(loso_mean[r], 9),
            round(cv[r][0], 9),
            -np.nan_to_num(cv[r][1]),
            r != "max",
        ),
    )
    method = (
        "mean held-out-source AUC on val (leave-one-source-out), then 5-fold CV log-loss"
        if by_loso
        else "5-fold cross-validated log-loss on val"
    )
    return best, {"method": method, "rules": record}


def choose_threshold(
    y: np.ndarray, score: np.ndarray, sources: np.ndarray | None, max_fpr: float
) -> tuple[float, str]:
    """The composite's verdict threshold on val: with `max_fpr` > 0 and known sources, the
    one that flags at most `max_fpr` of every real source's reals
    (`metrics.fpr_capped_threshold`); else Youden's J (`metrics.best_threshold`)."""
    from unmask.metrics import best_threshold, fpr_capped_threshold

    if max_fpr > 0 and sources is not None:
        return fpr_capped_threshold(y, score, sources, max_fpr)
    return best_threshold(y, score)


def saved_max_fpr(meta: dict[str, Any]) -> float:
    """The FPR cap a saved composite's threshold was chosen with (0: Youden's J)."""
    value = (meta.get("training") or {}).get("threshold_max_fpr", 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def member_name(folder: str | Path) -> str:
    return re.sub(r"[^a-z0-9_\-]", "-", Path(folder).resolve().name.lower()).strip("-")[:32] or "m"


def copy_member(src: Path, dst: Path) -> None:
    """A member folder inside the composite: model.json through the one writer, the weights
    and card copied; nothing else (no checkpoints, logs or links)."""
    from unmask.modelfile import CARD_FILE, read_saved_model, weights_path, write_saved_model

    model = read_saved_model(src)
    dst.mkdir(parents=True)
    write_saved_model(dst, model)
    w = weights_path(src)
    shutil.copyfile(w, dst / w.name)
    card = src / CARD_FILE
    if card.is_file() and not card.is_symlink():
        shutil.copyfile(card, dst / CARD_FILE)


def compose_models(
    member_dirs: Sequence[str | Path],
    names: Sequence[str] | None,
    val_manifest: str | Path,
    rule: str = "auto",
    out: str | Path = "runs/composite",
    batch_size: int = 64,
    progress: bool = True,
    model_id: str = "",
    size_edges: dict[str, Sequence[float]] | None = None,
    size_mode: str = "platt",
    max_fpr: float = 0.05,
) -> Path:
    from unmask.data.manifest import read_manifest
    from unmask.evaluation.scoring import row_box_sides
    from unmask.inference.composite import fuse
    from unmask.inference.loader import load_predictor
    from unmask.modelfile import MEMBERS_DIR, new_saved_model, write_saved_model

    _check_rule(rule, max_fpr)
    dirs, names = _member_names(member_dirs, names)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UnmaskError(f"{out} exists and is not empty; choose a new folder")
    preds, spec = _load_members(dirs)
    if size_mode not in SIZE_MODES:
        raise UnmaskError(f"--size-mode must be one of {', '.join(SIZE_MODES)}")
    size_edges = dict(size_edges or {})
    unknown = sorted(set(size_edges) - set(names))
    if unknown:
        raise UnmaskError(f"--size-calibrate names no member: {', '.join(unknown)}")
    per_member = [tuple(size_edges.get(n, ())) for n in names]
    df = read_manifest(val_manifest, split="val")
    y = (df["label"] != "real").to_numpy().astype(np.int64)
    sides = row_box_sides(df)
    if any(per_member) and not np.isfinite(sides).all():
        raise UnmaskError(f"{val_manifest}: face-size calibration needs every val row's box")
    if not 0 < y.sum() < len(y):
        raise UnmaskError(f"{val_manifest}: the val split needs real and fake rows")
    member_p = _member_scores(dict(zip(names, preds, strict=True)), df, batch_size, progress)
    choice: dict[str, Any] = {"requested": rule}
    sources = df["source"].astype(str).to_numpy() if "source" in df.columns else None
    if rule == "auto":
        rule, record = choose_rule(member_p, y, sources, sides, per_member, size_mode)
        choice.update(record)
    choice["chosen"] = rule
    if any(per_member):
        choice["size_calibration"] = {"mode": size_mode, "edges": size_edges}
    fusion = fit_fusion(member_p, y, names, rule, sides, per_member, size_mode)
    score, _ = fuse(member_p, fusion, sides)
    threshold, threshold_rule = choose_threshold(y, score, sources, max_fpr)
    val = _val_report(y, score, threshold, dict(zip(names, member_p.T, strict=True)), sources)

    saved = new_saved_model(
        id=model_id or out.name,
        kind="composite",
        detector={"name": "composite", "family": "composite", "kwargs": {}},
        classes=["real", "fake"],
        preprocess=spec,
        fusion=fusion,
        threshold=threshold,
        threshold_rule=threshold_rule,
        metrics={"val": val},
        training={
            "val_manifest": str(val_manifest),
            "n_val": int(len(y)),
            "rule": choice,
            "threshold_max_fpr": float(max_fpr) if sources is not None else 0.0,
            "members": {n: str(d) for n, d in zip(names, dirs, strict=True)},
        },
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, d in zip(names, dirs, strict=True):
        copy_member(d, out / MEMBERS_DIR / name)
    write_saved_model(out, saved)
    load_predictor(out)  # what we wrote, we can load
    return out


def _check_rule(rule: str, max_fpr: float) -> None:
    if rule not in RULES:
        raise UnmaskError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    if not 0.0 <= max_fpr < 1.0:
        raise UnmaskError(f"--max-fpr must be in [0, 1), got {max_fpr}")


def _member_names(member_dirs: Sequence[str | Path], names: Sequence[str] | None):
    """The member folders (1-8) and their names (given, or from the folders), all different."""
    dirs = [Path(d) for d in member_dirs]
    if not 1 <= len(dirs) <= 8:
        raise UnmaskError("a composite needs 1-8 member model folders")
    names = list(names) if names else [member_name(d) for d in dirs]
    if len(names) != len(dirs) or len(set(names)) != len(names):
        raise UnmaskError(f"--names needs {len(dirs)} different names, got {names}")
    return dirs, names


def _load_members(dirs: list[Path]):
    """The members' predictors and the one preprocessing spec they must share."""
    from unmask.inference.loader import load_predictor

    preds = [load_predictor(d, member=True) for d in dirs]
    spec = preds[0].spec
    for d, p in zip(dirs, preds, strict=True):
        if p.spec != spec:
            raise UnmaskError(
                f"{d}: its preprocessing differs from {dirs[0]}'s; members of a composite "
                "share one face finder and crop box (train them on the same prepared data)"
            )
    return preds, spec


def _member_scores(members: dict[str, Any], df: Any, batch_size: int, progress: bool):
    """(N, M) P(fake) of every member on the val rows, in member order."""
    from unmask.evaluation.scoring import score_rows
    from unmask.metrics import p_fake

    cols = []
    for name, p in members.items():
        if progress:
            print(f"scoring val with member {name}")
        cols.append(p_fake(score_rows(p, df, batch_size=batch_size, progress=progress)))
    return np.stack(cols, axis=1)


def _val_report(y, score, threshold: float, members: dict[str, np.ndarray], sources):
    """The composite's val metrics, each member's AUC, and (with sources) the share of each
    real source's rows flagged: the threshold rule's promise."""
    from unmask.metrics import binary_report, roc_auc

    val = binary_report(y, score, threshold, n_boot=200)
    val["members_auc"] = {n: roc_auc(y, p) for n, p in members.items()}
    if sources is not None:
        val["fpr_by_real_source"] = {
            str(src): float(np.mean(score[(y == 0) & (sources == src)] >= threshold))
            for src in sorted(set(sources[y == 0]))
        }
    return val
