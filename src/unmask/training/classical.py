"""Training the classical frequency detectors (`unmask train configs/dct-ridge.yaml`).

    model_dir = train_classical(cfg)

Protocol (the test split is never read):
1. rows of split `train` and `val` from `cfg.data.manifest`, restricted by `data.sources`
   / `data.exclude_sources` and capped by `data.max_per_class` (seeded);
2. features of every crop (grayscale, resized to `classical.feature_size`, default
   `data.input_size`), extracted in 2 processes and cached under
   `<output's parent>/.cache/features/` (.npy keyed by path + mtime + settings);
3. one pipeline per point of the hyper-parameter grid (`classical.grid`, e.g.
   `{C: [0.1, 1, 10]}`, or `DEFAULT_GRIDS`) fitted on train and ranked on val by AUC of the
   fake score (3 classes: macro one-vs-rest AUC); ties go to the higher balanced accuracy at
   the classifier's own decision rule, then to the earlier grid point;
4. ridge and SVM get Platt-scaled probabilities fitted on val;
5. the threshold on P(fake) = 1 - P(real) maximises balanced accuracy (Youden's J) on val;
6. `model.json` records the grid results, threshold + rule, val metrics, the preprocessing
   spec (`prepare.json` next to the manifest) and the resolved config.
When val holds a single class (e.g. a held-out source took the others away), the default
hyper-parameters are used, Platt scaling is fitted on train and the threshold is 0.5; the
model records why.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import ConfigError, UnmaskError
from unmask.training.config import TrainConfig


def _labels(df: Any, num_classes: int) -> np.ndarray:
    from unmask.labels import label_to_index

    try:
        return np.array([label_to_index(lb, num_classes) for lb in df["label"]], dtype=np.int64)
    except ValueError as exc:
        raise UnmaskError(f"manifest: {exc}") from None


def _rank_scores(pipe: Any, z: np.ndarray) -> np.ndarray:
    """Uncalibrated scores: (N,) fake score for 2 classes, (N, K) for more."""
    clf = pipe.named_steps["clf"]
    d = clf.decision_function(z)
    return d if d.ndim == 1 else (d[:, 0] if d.shape[1] == 1 else d)


def _selection_score(y: np.ndarray, scores: np.ndarray, num_classes: int) -> tuple[float, float]:
    from unmask.metrics import balanced_accuracy, roc_auc

    if num_classes == 2:
        auc = roc_auc(y, scores)
        ba = balanced_accuracy(y, (scores > 0).astype(np.int64), 2)
    else:
        aucs = [roc_auc((y == k).astype(np.int64), scores[:, k]) for k in range(num_classes)]
        aucs = [a for a in aucs if not math.isnan(a)]
        auc = float(np.mean(aucs)) if aucs else math.nan
        ba = balanced_accuracy(y, scores.argmax(1), num_classes)
    return (auc if not math.isnan(auc) else -1.0), ba


def train_classical(cfg: TrainConfig, progress: bool = True, jobs: int = 2) -> Path:
    """Train classical detector `cfg.detector.name` on the manifest; returns the model folder."""
    from unmask.config import to_dict
    from unmask.data.spec import read_prepare_spec
    from unmask.detectors.classical import (
        DEFAULT_GRIDS,
        FEATURES_OF,
        ArrayModel,
        calibrate,
        needs_calibration,
    )
    from unmask.detectors.registry import family_detector
    from unmask.labels import classes_for
    from unmask.metrics import p_fake, roc_auc

    t0 = time.time()
    name = cfg.detector.name
    info = family_detector(name, "classical")
    if not cfg.data.manifest:
        raise ConfigError("data.manifest is required")
    k = int(cfg.data.num_classes)
    classes = classes_for(k)
    kind = FEATURES_OF.get(name, info.tags.get("features", "spectrum"))
    size = int(cfg.classical.feature_size or cfg.data.input_size)
    kwargs = dict(cfg.detector.kwargs)

    tr, va = _train_val_rows(cfg)
    y_tr, y_va = _labels(tr, k), _labels(va, k)
    if len(np.unique(y_tr)) < k:
        present = sorted({classes[i] for i in y_tr})
        raise UnmaskError(
            f"train split holds class(es) {present or 'none'} only; {k}-class training needs "
            f"{', '.join(classes)} (check data.sources / exclude_sources / num_classes)"
        )
    val_ok = len(va) > 0 and len(np.unique(y_va)) >= 2
    f_tr, f_va = _features(cfg, (tr, va), kind, size, jobs, progress)

    grid = dict(cfg.classical.grid) or DEFAULT_GRIDS.get(name, {})
    grid = {g: (v if isinstance(v, (list, tuple)) else [v]) for g, v in grid.items()}
    fit = (f_tr, y_tr, f_va, y_va) if val_ok else (f_tr, y_tr, None, None)
    pipe, chosen, results = _grid_search(cfg, name, k, size, grid, fit, progress)
    notes: list[str] = []
    if needs_calibration(pipe.named_steps["clf"]):
        # on validation when it holds both classes, else (noted) on train
        f_cal, y_cal = (f_va, y_va) if val_ok else (f_tr, y_tr)
        calibrate(pipe, pipe.named_steps["scale"].transform(f_cal), y_cal)
        if not val_ok:
            notes.append("Platt scaling fitted on train (validation holds one class)")
    model = ArrayModel.from_pipeline(pipe)
    val_metrics, threshold, rule = _validation(model, f_va, y_va, k, classes)
    if not val_ok:
        notes.append("validation holds fewer than two classes: default hyper-parameters")
    proba_tr = model.predict_proba_features(f_tr)
    train_auc = roc_auc((y_tr > 0).astype(np.int64), p_fake(proba_tr))

    preprocess, note = read_prepare_spec(cfg.data.manifest)
    notes += [note] if note else []
    training = _training_record(cfg, grid, results, chosen, tr, va, notes)
    training["train_seconds"] = round(time.time() - t0, 1)
    training["config"] = to_dict(cfg)
    profiles = _class_profiles(kind, f_tr, y_tr, classes)
    out = save_classical(
        pipe,
        cfg.output,
        detector={"name": name, "family": "classical", "kwargs": {**kwargs, **chosen}},
        classes=list(classes),
        preprocess=preprocess,
        threshold=float(threshold),
        threshold_rule=rule,
        metrics={"val": val_metrics, "train_auc": train_auc},
        training=training,
        class_profiles=profiles,
        profile_size=size if profiles else 0,
    )
    if progress:
        print(_saved_line(name, out, chosen, threshold, val_metrics))
    return out


def _saved_line(name: str, out: Path, chosen: dict, threshold: float, v: dict) -> str:
    return f"saved {name} to {out}: chosen {chosen or 'defaults'}, threshold {threshold:.4f}" + (
        f", val AUC {v['auc']:.4f}, val acc {v['accuracy']:.4f}" if v else ""
    )


def _train_val_rows(cfg: TrainConfig):
    """The train and val rows the config selects (sources, caps, seed)."""
    from unmask.data.manifest import read_manifest
    from unmask.training.rows import select_rows

    df = read_manifest(cfg.data.manifest)
    tr = select_rows(df[df["split"] == "train"], cfg.data, cfg.seed)
    va = select_rows(df[df["split"] == "val"], cfg.data, cfg.seed)
    return tr, va


def _features(cfg: TrainConfig, parts, kind: str, size: int, jobs: int, progress: bool):
    """Features of the train and val crops, cached beside the output, never inside the data
    set (it may be read-only or shared)."""
    from unmask.features.extract import extract_files

    cache = Path(cfg.output).expanduser().resolve().parent / ".cache" / "features"
    return tuple(
        extract_files(list(d["abs_path"]), kind, size, cache, jobs, progress, f"{n} features")
        for d, n in zip(parts, ("train", "val"), strict=True)
    )


def _grid_search(cfg: TrainConfig, name: str, k: int, size: int, grid: dict, fit, progress):
    """Fit one pipeline per grid point on train and keep the best by (val AUC, balanced
    accuracy, earlier point); `fit` = (f_tr, y_tr, f_va, y_va), f_va None when validation
    cannot rank (defaults only). Returns (pipeline, chosen point, one result row per point)."""
    from unmask.detectors.classical import set_hparam
    from unmask.detectors.registry import create_detector

    f_tr, y_tr, f_va, y_va = fit
    val_ok = f_va is not None
    points = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())]
    if not val_ok or not points:
        points = [{}]
    results: list[dict[str, Any]] = []
    best: tuple[Any, ...] | None = None
    for i, point in enumerate(points):
        pipe = create_detector(name, num_classes=k, feature_size=size, **dict(cfg.detector.kwargs))
        if cfg.data.class_weights:  # inverse class frequency, as the CNN loss
            set_hparam(pipe, "class_weight", "balanced")
        for key, value in point.items():
            set_hparam(pipe, key, value)
        t1 = time.time()
        pipe[1:].fit(f_tr, y_tr)
        row: dict[str, Any] = {"params": point, "fit_seconds": round(time.time() - t1, 2)}
        if val_ok:
            z_va = pipe.named_steps["scale"].transform(f_va)
            auc, ba = _selection_score(y_va, _rank_scores(pipe, z_va), k)
            row.update(val_auc=auc, val_balanced_accuracy_at_default=ba)
            key_ = (auc, ba, -i)
            if best is None or key_ > best[0]:
                best = (key_, pipe, point)
        else:
            best = ((0,), pipe, point)
        results.append(row)
        if progress:
            print(
                f"  {name} {point or 'defaults'}: "
                + ", ".join(f"{a}={b:.4f}" for a, b in row.items() if isinstance(b, float))
            )
    assert best is not None
    return best[1], best[2], results


def _validation(model: Any, f_va: Any, y_va: np.ndarray, k: int, classes) -> tuple:
    """(val metrics, threshold, threshold rule) of the final model on the val rows."""
    from unmask.metrics import best_threshold, binary_report, multiclass_report, p_fake

    if not len(y_va):
        return {}, 0.5, "0.5 (no validation rows)"
    proba_va = model.predict_proba_features(f_va)
    yb_va = (y_va > 0).astype(np.int64)
    threshold, rule = best_threshold(yb_va, p_fake(proba_va))
    val_metrics = binary_report(yb_va, p_fake(proba_va), threshold, n_boot=200)
    if k == 3:
        val_metrics["multiclass"] = multiclass_report(y_va, proba_va, classes)
    return val_metrics, threshold, rule


def _counts(d: Any) -> dict[str, dict[str, int]]:
    return {
        str(s): {str(lb): int(n) for lb, n in g["label"].value_counts().sort_index().items()}
        for s, g in d.groupby("source")
    }


def _training_record(cfg: TrainConfig, grid, results, chosen, tr, va, notes) -> dict[str, Any]:
    """model.json's `training` section: weighting, the selection and the data it saw."""
    return {
        "class_weight": "balanced" if cfg.data.class_weights else None,
        "selection": {
            "metric": "val AUC of the fake score (3 classes: macro one-vs-rest AUC)",
            "grid": grid,
            "results": results,
            "chosen": chosen,
        },
        "data": {
            "manifest": str(cfg.data.manifest),
            "train_counts": _counts(tr),
            "val_counts": _counts(va),
            "n_train": len(tr),
            "n_val": len(va),
        },
        "notes": notes,
    }


def _class_profiles(kind: str, f_tr: Any, y_tr: np.ndarray, classes) -> dict[str, Any]:
    """Mean training feature per class: `unmask detect --explain` plots a face's spectrum
    against these (1-D spectra only; 2-D DCT means would bloat model.json)."""
    if kind != "spectrum":
        return {}
    return {
        c: np.asarray(f_tr)[y_tr == i].mean(axis=0).round(4).tolist() for i, c in enumerate(classes)
    }


def save_classical(pipe: Any, model_dir: str | Path, **fields: Any) -> Path:
    """Write `weights.safetensors` (every fitted array of `pipe`) and `model.json` through
    the one writer; `fields` are the SavedModel fields besides kind/features/head."""
    from safetensors.numpy import save_file

    from unmask.detectors.classical import export_arrays
    from unmask.modelfile import WEIGHTS_FILE, new_saved_model, write_saved_model

    d = Path(model_dir)
    arrays, head = export_arrays(pipe)
    feats = pipe.named_steps["features"]
    saved = new_saved_model(
        kind="classical",
        features={"kind": feats.kind, "size": int(feats.size)},
        head=head,
        **fields,
    )
    d.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(d / WEIGHTS_FILE))
    write_saved_model(d, saved)
    return d
