"""Metrics against scikit-learn on fixed vectors, and the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from unmask import metrics as M

Y = np.array([0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.4, 0.05, 0.6, 0.7, 0.2, 0.4])


def test_auc_ap_roc_match_sklearn():
    assert M.roc_auc(Y, S) == pytest.approx(skm.roc_auc_score(Y, S))
    assert M.average_precision(Y, S) == pytest.approx(skm.average_precision_score(Y, S))
    fpr, tpr, thr = M.roc_curve(Y, S)
    f2, t2, th2 = skm.roc_curve(Y, S, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    np.testing.assert_allclose(thr[1:], th2[1:])


@pytest.mark.parametrize("seed", range(5))
def test_random_vectors_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200) + 0.3 * y, 2)  # rounding makes ties
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert M.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))
    pred = (s >= 0.6).astype(int)
    assert M.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    assert M.balanced_accuracy(y, pred) == pytest.approx(skm.balanced_accuracy_score(y, pred))
    np.testing.assert_array_equal(M.confusion_matrix(y, pred, 2), skm.confusion_matrix(y, pred))
    r = M.binary_report(y, s, 0.6, n_boot=50)
    assert r["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert r["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert r["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert r["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))


def test_report_values_and_ci():
    r = M.binary_report(Y, S, threshold=0.5, n_boot=300, seed=1)
    pred = (S >= 0.5).astype(int)
    assert r["confusion"] == skm.confusion_matrix(Y, pred).tolist()
    assert r["tnr"] == pytest.approx(skm.recall_score(Y, pred, pos_label=0))
    lo, hi = r["auc_ci"]
    assert lo <= r["auc"] <= hi
    lo, hi = r["accuracy_ci"]
    assert lo <= r["accuracy"] <= hi
    assert M.binary_report(Y, S, 0.5, n_boot=300, seed=1)["auc_ci"] == r["auc_ci"]  # seeded


def test_eer_known_answers():
    assert M.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert M.eer([0, 0, 1, 1], [0.9, 0.8, 0.1, 0.2]) == 1.0
    # one of two on each side misranked: FPR = FNR = 0.5
    assert M.eer([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.5)
    fpr, tpr, _ = skm.roc_curve(Y, S)
    e = M.eer(Y, S)
    i = np.argmin(np.abs(fpr - (1 - tpr)))
    assert abs(e - fpr[i]) < 0.2


def test_one_class_gives_nan_with_reason():
    y = np.ones(5, int)
    s = np.linspace(0, 1, 5)
    assert math.isnan(M.roc_auc(y, s))
    assert math.isnan(M.eer(y, s))
    r = M.binary_report(y, s, 0.5)
    assert math.isnan(r["auc"]) and any("one class" in n for n in r["notes"])
    assert r["recall"] == pytest.approx(3 / 5)  # detection rate still reported
    assert math.isnan(r["tnr"])
    assert math.isnan(M.average_precision(np.zeros(3, int), [0.1, 0.2, 0.3]))
    assert M.one_class_reason([]) == "no samples"


def test_all_scores_equal():
    y = np.array([0, 1, 0, 1])
    s = np.full(4, 0.3)
    assert M.roc_auc(y, s) == 0.5 == skm.roc_auc_score(y, s)
    assert M.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))
    r = M.binary_report(y, s)
    assert any("equal" in n for n in r["notes"])


def test_nan_scores_raise_clearly():
    with pytest.raises(ValueError, match=r"1 NaN.*index 2"):
        M.roc_auc([0, 1, 0], [0.1, 0.2, np.nan])
    with pytest.raises(ValueError, match="length|values"):
        M.roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0/1"):
        M.roc_auc([0, 2], [0.1, 0.2])


def test_multiclass_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    p = rng.random((90, 3)) + np.eye(3)[y] * 0.6
    p /= p.sum(1, keepdims=True)
    r = M.multiclass_report(y, p, ("real", "gan", "edited"))
    pred = p.argmax(1)
    np.testing.assert_array_equal(r["confusion"], skm.confusion_matrix(y, pred))
    assert r["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert r["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    for i, name in enumerate(("real", "gan", "edited")):
        assert r["per_class"][name]["auc_ovr"] == pytest.approx(skm.roc_auc_score(y == i, p[:, i]))
        assert r["per_class"][name]["recall"] == pytest.approx(
            skm.recall_score(y, pred, labels=[i], average=None)[0]
        )
    assert r["macro_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))


def test_multiclass_absent_class():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    r = M.multiclass_report(y, p, ("real", "gan", "edited"))
    assert math.isnan(r["per_class"]["edited"]["auc_ovr"])
    assert r["notes"] and r["confusion"][1][2] == 1


def test_best_threshold_maximises_balanced_accuracy():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.7, 0.6, 0.8, 0.9])
    t, rule = M.best_threshold(y, s)
    assert "balanced accuracy" in rule
    ba = M.balanced_accuracy(y, (s >= t).astype(int))
    grid = [M.balanced_accuracy(y, (s >= u).astype(int)) for u in np.linspace(0, 1, 101)]
    assert ba == pytest.approx(max(grid))
    assert M.best_threshold([1, 1], [0.2, 0.3])[0] == 0.5


def test_weighted_auc_with_unit_weights_is_the_auc():
    from unmask.metrics import weighted_roc_auc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # rounded: ties on purpose
    assert weighted_roc_auc(y, s, np.ones(200)) == pytest.approx(M.roc_auc(y, s), abs=1e-12)


def test_weighted_auc_weight_two_counts_a_sample_twice():
    from unmask.metrics import weighted_roc_auc

    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.9, 0.3, 0.5, 0.3, 0.1])
    w = np.array([1, 2, 1, 1, 3])
    rep = np.repeat(np.arange(5), w)
    assert weighted_roc_auc(y, s, w) == pytest.approx(M.roc_auc(y[rep], s[rep]), abs=1e-12)
    assert np.isnan(weighted_roc_auc(y, s, [1, 1, 0, 0, 0]))
    with pytest.raises(ValueError):
        weighted_roc_auc(y, s, [1, 1, -1, 1, 1])


def test_matching_weights_give_the_target_distribution():
    from unmask.metrics import matching_weights

    values = np.array([100, 100, 400, 400, 400, 400.0])
    w, covered = matching_weights(values, [100, 400, 3000.0])
    # bins of 100 and 400 each hold half of the covered target; 3000 has no value near it
    assert covered.tolist() == [True, True, False]
    assert w.tolist() == pytest.approx([1.5, 1.5, 0.75, 0.75, 0.75, 0.75])
    with pytest.raises(ValueError):
        matching_weights([0.0, 1.0], [1.0])


def test_size_matched_auc_removes_a_size_shortcut():
    """A score that only measures face size looks good when large fakes meet mostly small
    reals, and is at chance once the reals are matched to the fakes' sizes."""
    from unmask.metrics import matching_weights, weighted_roc_auc

    real_side = np.array([100.0] * 50 + [400.0] * 50)
    fake_side = np.full(50, 400.0)
    side = np.concatenate([real_side, fake_side])
    y = np.r_[np.zeros(100), np.ones(50)].astype(int)
    score = side / 1000.0
    assert M.roc_auc(y, score) == pytest.approx(0.75)
    w, covered = matching_weights(real_side, fake_side)
    assert covered.all()
    assert weighted_roc_auc(y, score, np.r_[w, np.ones(50)]) == pytest.approx(0.5)


def test_weighted_auc_equals_repeating_samples_property():
    """Integer weights are the same as repeating each sample that many times."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from unmask.metrics import weighted_roc_auc

    rows = st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 4), st.integers(1, 3)), min_size=2, max_size=30
    )

    @settings(max_examples=60, deadline=None)
    @given(rows)
    def check(data):
        y = np.array([r[0] for r in data])
        s = np.array([r[1] for r in data], dtype=float)  # few values: many ties
        w = np.array([r[2] for r in data])
        rep = np.repeat(np.arange(len(data)), w)
        got = weighted_roc_auc(y, s, w)
        if len(set(y)) < 2:
            assert math.isnan(got)
        else:
            assert got == pytest.approx(M.roc_auc(y[rep], s[rep]), abs=1e-12)

    check()
