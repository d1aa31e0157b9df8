"""The one AUC/ROC kernel (`unmask.metrics`): hand-made answers, weights, one class, and
every caller (training engine, blend_eval) agreeing with it."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from unmask import metrics as M


def test_auc_of_hand_made_rankings():
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.1, 0.2]) == 0.0
    # pairs (pos, neg): (0.3, 0.1) right, (0.3, 0.5) wrong, (0.7, *) right -> 3 of 4
    assert M.roc_auc([1, 0, 1, 0], [0.3, 0.1, 0.7, 0.5]) == 0.75


def test_ties_count_one_half():
    assert M.roc_auc([0, 1], [0.5, 0.5]) == 0.5
    # pos 0.4 ties neg 0.4 (1/2), beats neg 0.2 (1); pos 0.9 beats both -> 3.5 / 4
    assert M.roc_auc([1, 0, 0, 1], [0.4, 0.4, 0.2, 0.9]) == 0.875
    fpr, tpr, thr = M.roc_curve([1, 0, 0, 1], [0.4, 0.4, 0.2, 0.9])
    assert thr.tolist() == [np.inf, 0.9, 0.4, 0.2]  # one point per distinct score
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 1.0, 1.0]


def test_weights_count_samples_and_pairs():
    y, s = [1, 0, 1, 0], [0.3, 0.1, 0.7, 0.5]
    # the wrong pair (0.3, 0.5) weighs 3 * 1 of (1 + 3) * (1 + 1) = 8 -> 5 / 8
    assert M.roc_auc(y, s, sample_weight=[3, 1, 1, 1]) == 0.625
    assert M.roc_auc(y, s, sample_weight=[1, 1, 1, 1]) == M.roc_auc(y, s)
    assert M.roc_auc(y, s, sample_weight=[0, 1, 1, 1]) == 1.0  # the misranked pos weighs 0
    fpr, tpr, _ = M.roc_curve(y, s, sample_weight=[3, 1, 1, 1])
    assert tpr.tolist() == [0.0, 0.25, 0.25, 1.0, 1.0]
    assert M.weighted_roc_auc(y, s, [3, 1, 1, 1]) == 0.625  # the old name, same kernel


def test_one_class_or_no_weight_is_nan():
    assert math.isnan(M.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert math.isnan(M.roc_auc([0, 0], [0.1, 0.2]))
    assert math.isnan(M.roc_auc([], []))
    assert math.isnan(M.roc_auc([1, 0], [0.9, 0.1], sample_weight=[1, 0]))
    fpr, tpr, _ = M.roc_curve([1, 1], [0.2, 0.4])
    assert np.isnan(fpr).all() and tpr.tolist() == [0.0, 0.5, 1.0]


def test_bad_weights_raise_one_clear_error():
    for w in ([1, -1], [1, np.nan], [1, 1, 1]):
        with pytest.raises(ValueError, match="weight must be finite, non-negative"):
            M.roc_auc([1, 0], [0.9, 0.1], sample_weight=w)


def test_unit_weight_auc_is_exactly_the_rank_statistic():
    """The kernel's area equals the Mann-Whitney rank formula bit for bit (both have an
    exact half-integer numerator and one division), so stored AUCs do not move."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(3)
    for _ in range(50):
        y = rng.integers(0, 2, 150)
        s = np.round(rng.random(150) + 0.3 * y, 1)
        n_pos = int(y.sum())
        ranks = rankdata(s)
        u = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (y.size - n_pos))
        assert M.roc_auc(y, s) == u


@pytest.mark.parametrize("seed", range(4))
def test_weighted_matches_sklearn(seed):
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.4 * y, 2)
    w = rng.random(300) * 3
    assert abs(M.roc_auc(y, s, w) - roc_auc_score(y, s, sample_weight=w)) < 1e-12
    fpr, tpr, _ = M.roc_curve(y, s, w)
    f2, t2, _ = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2, atol=1e-12)
    np.testing.assert_allclose(tpr, t2, atol=1e-12)


def test_p_fake_is_one_minus_p_real():
    proba = np.array([[0.9, 0.1], [0.25, 0.75], [0.5, 0.5]])
    assert M.p_fake(proba).tolist() == [1.0 - 0.9, 1.0 - 0.25, 1.0 - 0.5]
    assert M.p_fake([[0.2, 0.3, 0.5]]).tolist() == [0.8]  # multi-class: every fake kind


@pytest.mark.parametrize("seed", range(4))
def test_engine_val_auc_matches_sklearn(seed):
    from sklearn.metrics import roc_auc_score

    from unmask.training.engine import binary_metrics

    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 3, 400)  # real + two fake kinds
    logits = rng.normal(size=(400, 3)) + np.eye(3)[targets]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    proba[::7] = proba[0]  # repeated rows: tied scores
    want = roc_auc_score(targets > 0, 1.0 - proba[:, 0])
    assert abs(binary_metrics(proba, targets)["auc"] - want) < 1e-12
    assert math.isnan(binary_metrics(proba[targets > 0], targets[targets > 0])["auc"])


def _blend_eval():
    path = Path(__file__).resolve().parents[1] / "experiments" / "blend_eval.py"
    spec = importlib.util.spec_from_file_location("blend_eval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_blend_eval_auc_ci_uses_the_kernel():
    """blend_eval's stratified bootstrap resamples by weights on the one kernel; its point
    AUC is the kernel's and each resample equals the AUC on the repeated rows."""
    be = _blend_eval()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    s = np.round(rng.random(80) + 0.5 * y, 1)
    r = be.auc_ci(y, s, n_boot=200, seed=1)
    assert r["auc"] == M.roc_auc(y, s)
    assert r["lo"] <= r["auc"] <= r["hi"] and r["hi"] - r["lo"] < 0.4
    assert (r["n_fake"], r["n_real"]) == (int(y.sum()), int((y == 0).sum()))
    assert be.auc_ci(y, s, n_boot=200, seed=1) == r  # seeded
    assert be.auc_ci(np.ones(3), [0.1, 0.2, 0.3])["auc"] is None
