"""Classical frequency detectors: scikit-learn Pipelines, saved as plain arrays.

    spectrum-logreg, spectrum-svm   Durall et al. 2020: 1-D azimuthal average of the log power
                                    spectrum -> standardise -> logistic regression / SVM
    dct-ridge, dct-logreg           Frank et al. 2020: log |DCT-II| of the grayscale crop,
                                    standardised per coefficient -> ridge / logistic regression

Each builder returns `Pipeline([("features", FrequencyFeatures), ("scale",
Standardizer), ("clf", classifier)])`; the first step turns a batch of images ((N, H, W, 3)
uint8 array or a list of arrays of any size) into features, so `pipe.predict_proba(images)`
works directly. Training (`unmask.training.classical`) fits `pipe[1:]` on cached features.

Classifiers without probabilities (ridge, SVM) are wrapped after the hyper-parameter search
in `CalibratedClassifierCV(FrozenEstimator(clf), method="sigmoid")` fitted on the validation
split (Platt scaling). `export_arrays` turns a fitted pipeline into plain arrays + a head
description; `ArrayModel` rebuilds the scores from them with NumPy alone (training writes
them to `weights.safetensors`/`model.json`, `unmask.inference.classical_predictor` reads
them back), so loading a model runs no code (no pickle/joblib). No file I/O lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from unmask.detectors.registry import register_detector
from unmask.errors import UnmaskError
from unmask.features.frequency import CoefficientStandardizer, batch_features, feature_dim

# Default hyper-parameter grids, searched on the validation split (see training.classical).
DEFAULT_GRIDS: dict[str, dict[str, list[float]]] = {
    "spectrum-logreg": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "spectrum-svm": {"C": [0.1, 1.0, 10.0, 100.0]},
    # DCT features are size**2 standardised coefficients, so the useful alphas are large.
    "dct-ridge": {"alpha": [1e2, 1e3, 1e4, 1e5, 1e6]},
    "dct-logreg": {"C": [1e-4, 1e-3, 1e-2, 1e-1, 1.0]},
}
FEATURES_OF: dict[str, str] = {
    "spectrum-logreg": "spectrum",
    "spectrum-svm": "spectrum",
    "dct-ridge": "dct",
    "dct-logreg": "dct",
}


class FrequencyFeatures(TransformerMixin, BaseEstimator):
    """Images -> frequency features (stateless). kind: "spectrum" | "dct"; images are
    converted to grayscale and resized to size x size first."""

    def __init__(self, kind: str = "spectrum", size: int = 256) -> None:
        self.kind = kind
        self.size = size

    def fit(self, X: Any, y: Any = None) -> FrequencyFeatures:
        feature_dim(self.kind, self.size)  # validates kind
        return self

    def transform(self, X: Any) -> np.ndarray:
        return batch_features(X, self.kind, self.size)


class Standardizer(TransformerMixin, BaseEstimator, CoefficientStandardizer):
    """`CoefficientStandardizer` as a scikit-learn transformer."""

    def __init__(self, min_std: float = 1e-8) -> None:
        self.min_std = min_std


def _pipeline(kind: str, feature_size: int, clf: Any):
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("features", FrequencyFeatures(kind, feature_size)),
            ("scale", Standardizer()),
            ("clf", clf),
        ]
    )


def _check_classes(num_classes: int) -> None:
    if num_classes not in (2, 3):
        raise UnmaskError(f"num_classes must be 2 or 3, got {num_classes}")


@register_detector("spectrum-logreg", family="classical", features="spectrum")
def spectrum_logreg(
    num_classes: int = 2, feature_size: int = 256, C: float = 1.0, max_iter: int = 5000
):
    """Durall et al.: azimuthal log power spectrum + logistic regression."""
    from sklearn.linear_model import LogisticRegression

    _check_classes(num_classes)
    return _pipeline("spectrum", feature_size, LogisticRegression(C=C, max_iter=max_iter))


@register_detector("spectrum-svm", family="classical", features="spectrum")
def spectrum_svm(
    num_classes: int = 2, feature_size: int = 256, C: float = 1.0, kernel: str = "rbf"
):
    """Durall et al.: azimuthal log power spectrum + SVM (RBF kernel; one-vs-rest for 3
    classes), Platt-calibrated on the validation split."""
    from sklearn.svm import SVC

    _check_classes(num_classes)
    if kernel not in ("rbf", "linear"):
        raise UnmaskError(f"spectrum-svm: kernel must be rbf or linear, got {kernel!r}")
    svc = SVC(C=C, kernel=kernel, gamma="scale")
    if num_classes == 3:
        from sklearn.multiclass import OneVsRestClassifier

        svc = OneVsRestClassifier(svc)
    return _pipeline("spectrum", feature_size, svc)


@register_detector("dct-ridge", family="classical", features="dct")
def dct_ridge(num_classes: int = 2, feature_size: int = 256, alpha: float = 1e4):
    """Frank et al.: log |DCT| per-coefficient standardised + ridge regression (classifier),
    Platt-calibrated on the validation split."""
    from sklearn.linear_model import RidgeClassifier

    _check_classes(num_classes)
    return _pipeline("dct", feature_size, RidgeClassifier(alpha=alpha))


@register_detector("dct-logreg", family="classical", features="dct")
def dct_logreg(
    num_classes: int = 2, feature_size: int = 256, C: float = 1e-2, max_iter: int = 2000
):
    """Frank et al.: log |DCT| per-coefficient standardised + logistic regression."""
    from sklearn.linear_model import LogisticRegression

    _check_classes(num_classes)
    return _pipeline("dct", feature_size, LogisticRegression(C=C, max_iter=max_iter))


def set_hparam(pipe: Any, name: str, value: Any) -> None:
    """Set classifier hyper-parameter `name` (also through a one-vs-rest wrapper)."""
    params = pipe.get_params()
    for key in (f"clf__{name}", f"clf__estimator__{name}"):
        if key in params:
            pipe.set_params(**{key: value})
            return
    raise UnmaskError(f"grid key {name!r} is not a parameter of {type(pipe[-1]).__name__}")


def needs_calibration(clf: Any) -> bool:
    return not hasattr(clf, "predict_proba")


def calibrate(pipe: Any, z_val: np.ndarray, y_val: np.ndarray) -> None:
    """Replace the fitted classifier by its Platt-calibrated version, fitted on
    standardised validation features `z_val`."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from unmask.errors import UnmaskError

    counts = np.bincount(np.asarray(y_val, dtype=np.int64))
    fewest = int(counts[counts > 0].min()) if counts.size else 0
    if fewest < 2 or (counts > 0).sum() < 2:
        raise UnmaskError(
            f"calibration needs at least 2 rows of each class (has {counts.tolist()}); "
            "use a larger manifest"
        )
    # sklearn cross-validates the calibration: at most as many folds as the rarest class
    cal = CalibratedClassifierCV(
        FrozenEstimator(pipe.named_steps["clf"]), method="sigmoid", cv=min(5, fewest)
    )
    cal.fit(z_val, y_val)
    pipe.steps[-1] = ("clf", cal)


# --- export to arrays and the NumPy scorer ------------------------------------------------
def _export_base(clf: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    if isinstance(clf, (LogisticRegression, RidgeClassifier)):
        arrays["clf.coef"] = np.atleast_2d(clf.coef_).astype(np.float64)
        arrays["clf.intercept"] = np.atleast_1d(clf.intercept_).astype(np.float64)
        return {"type": "linear", "classifier": type(clf).__name__, "kernel": "", "n_estimators": 0}
    svcs = clf.estimators_ if isinstance(clf, OneVsRestClassifier) else [clf]
    if all(isinstance(s, SVC) for s in svcs):
        for k, s in enumerate(svcs):
            arrays[f"clf.{k}.support_vectors"] = np.asarray(s.support_vectors_, np.float64)
            arrays[f"clf.{k}.dual_coef"] = np.asarray(s.dual_coef_, np.float64)
            arrays[f"clf.{k}.intercept"] = np.asarray(s.intercept_, np.float64)
            arrays[f"clf.{k}.gamma"] = np.asarray([s._gamma], np.float64)
        return {
            "type": "svm",
            "classifier": "SVC",
            "kernel": svcs[0].kernel,
            "n_estimators": len(svcs),
        }
    raise TypeError(f"cannot export classifier {type(clf).__name__}")


def export_arrays(pipe: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every fitted array of a trained pipeline + the head description for model.json."""
    from sklearn.calibration import CalibratedClassifierCV

    arrays: dict[str, np.ndarray] = {}
    scale = pipe.named_steps["scale"]
    arrays["scale.mean"] = np.asarray(scale.mean_, np.float64)
    arrays["scale.scale"] = np.asarray(scale.scale_, np.float64)
    clf = pipe.named_steps["clf"]
    classes = [int(c) for c in clf.classes_]
    if isinstance(clf, CalibratedClassifierCV):
        (cc,) = clf.calibrated_classifiers_
        head = _export_base(cc.estimator.estimator, arrays)
        arrays["cal.a"] = np.array([c.a_ for c in cc.calibrators], np.float64)
        arrays["cal.b"] = np.array([c.b_ for c in cc.calibrators], np.float64)
        head["link"] = "sigmoid-calibrated"
    else:
        head = _export_base(clf, arrays)
        if not hasattr(clf, "predict_proba"):
            raise TypeError("an uncalibrated classifier without predict_proba cannot be saved")
        head["link"] = "logistic"
    head["classes"] = classes
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    return arrays, head


def _expit(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


def check_arrays(arrays: dict[str, np.ndarray], head: dict[str, Any]) -> None:
    """Every array `ArrayModel` reads exists, is finite and has a consistent shape
    (ValueError otherwise), so a damaged weights file fails before scoring."""
    k = len(head["classes"])

    def get(name: str, ndim: int) -> np.ndarray:
        a = arrays.get(name)
        if a is None:
            raise ValueError(f"weights lack {name!r}")
        if a.ndim != ndim or not np.isfinite(a).all():
            raise ValueError(f"{name!r}: expected finite {ndim}-D array, got shape {a.shape}")
        return a

    d = get("scale.mean", 1).shape[0]
    if get("scale.scale", 1).shape != (d,) or not (arrays["scale.scale"] > 0).all():
        raise ValueError("'scale.scale' must be positive and as wide as 'scale.mean'")
    outs = 1 if k == 2 else k
    if head["type"] == "linear":
        if get("clf.coef", 2).shape != (outs, d) or get("clf.intercept", 1).shape != (outs,):
            raise ValueError("linear head arrays do not fit the features")
    else:
        n = int(head["n_estimators"])
        if n != outs:
            raise ValueError(f"svm head needs {outs} estimators, has {n}")
        for i in range(n):
            sv = get(f"clf.{i}.support_vectors", 2)
            if sv.shape[1] != d or get(f"clf.{i}.dual_coef", 2).shape != (1, sv.shape[0]):
                raise ValueError(f"svm estimator {i}: arrays do not fit the features")
            if get(f"clf.{i}.intercept", 1).shape != (1,) or get(f"clf.{i}.gamma", 1).shape != (1,):
                raise ValueError(f"svm estimator {i}: bad intercept/gamma")
    if head["link"] == "sigmoid-calibrated" and (
        get("cal.a", 1).shape != (outs,) or get("cal.b", 1).shape != (outs,)
    ):
        raise ValueError("calibration arrays do not fit the head")


class ArrayModel:
    """Standardise -> decision -> probabilities, from exported arrays (NumPy only)."""

    def __init__(self, arrays: dict[str, np.ndarray], head: dict[str, Any]) -> None:
        check_arrays(arrays, head)
        self.arrays = arrays
        self.head = head
        self.mean = arrays["scale.mean"]
        self.scale = arrays["scale.scale"]
        self.n_classes = len(head["classes"])

    @classmethod
    def from_pipeline(cls, pipe: Any) -> ArrayModel:
        return cls(*export_arrays(pipe))

    def standardize(self, feats: np.ndarray) -> np.ndarray:
        f = np.asarray(feats, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.mean.shape[0]:
            raise UnmaskError(
                f"features of shape {f.shape} do not fit this model ({self.mean.shape[0]} wide)"
            )
        return (f - self.mean) / self.scale

    def decision(self, z: np.ndarray) -> np.ndarray:
        a = self.arrays
        if self.head["type"] == "linear":
            return z @ a["clf.coef"].T + a["clf.intercept"]
        cols = []
        for k in range(self.head["n_estimators"]):
            sv = a[f"clf.{k}.support_vectors"]
            if self.head["kernel"] == "rbf":
                g = float(a[f"clf.{k}.gamma"][0])
                d2 = (z * z).sum(1)[:, None] + (sv * sv).sum(1)[None, :] - 2.0 * z @ sv.T
                kern = np.exp(-g * np.maximum(d2, 0.0))
            else:
                kern = z @ sv.T
            cols.append(kern @ a[f"clf.{k}.dual_coef"][0] + a[f"clf.{k}.intercept"][0])
        return np.stack(cols, axis=1)

    def proba_from_decision(self, d: np.ndarray) -> np.ndarray:
        n, k = d.shape[0], self.n_classes
        if self.head["link"] == "logistic":
            if k == 2:
                p1 = _expit(d[:, 0])
                return np.stack([1.0 - p1, p1], axis=1)
            e = np.exp(d - d.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        a, b = self.arrays["cal.a"], self.arrays["cal.b"]
        p = _expit(-(a[None, :] * d + b[None, :]))
        if k == 2:
            return np.stack([1.0 - p[:, 0], p[:, 0]], axis=1)
        den = p.sum(axis=1, keepdims=True)
        out = np.full((n, k), 1.0 / k)
        np.divide(p, den, out=out, where=den != 0)
        out[(out > 1.0) & (out <= 1.0 + 1e-5)] = 1.0
        return out

    def predict_proba_standardized(self, z: np.ndarray) -> np.ndarray:
        return self.proba_from_decision(self.decision(z))

    def predict_proba_features(self, feats: np.ndarray) -> np.ndarray:
        return self.predict_proba_standardized(self.standardize(feats))
