"""The threshold that protects real photos (`metrics.fpr_capped_threshold`), on hand-made
scores: two real sources, one easy and one hard, and the cap must hold both."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unmask import metrics as M


def _two_sources():
    # easy reals score low; hard reals (upscaled studio photos, say) score as high as fakes
    easy = np.linspace(0.0, 0.3, 100)
    hard = np.linspace(0.2, 0.9, 20)
    fakes = np.linspace(0.5, 1.0, 100)
    s = np.r_[easy, hard, fakes]
    y = np.r_[np.zeros(120, int), np.ones(100, int)]
    g = np.r_[["easy"] * 100, ["hard"] * 20, ["gan"] * 100]
    return y, s, g


def test_cap_holds_every_real_source_where_youden_does_not():
    y, s, g = _two_sources()
    youden, _ = M.best_threshold(y, s)
    hard = (y == 0) & (g == "hard")
    assert np.mean(s[hard] >= youden) > 0.05  # pooled reals hide the hard source
    t, rule = M.fpr_capped_threshold(y, s, g, 0.05)
    assert rule.startswith("fpr_cap_val") and "5%" in rule
    for src in ("easy", "hard"):
        assert np.mean(s[(y == 0) & (g == src)] >= t) <= 0.05
    # the lowest threshold that holds the cap: one more hard real would break it
    assert t <= np.sort(s[hard])[-1] + 1e-9
    assert np.mean(s[y == 1] >= t) > 0.1  # still detects the fakes above the hard reals


def test_each_source_counts_alike_not_by_size():
    y, s, g = _two_sources()
    # 20 hard reals among 120: pooled, 6 of them flagged would be 5% of all reals
    pooled = M.fpr_capped_threshold(y, s, np.where(y == 0, "all", "gan"), 0.05)[0]
    per_source = M.fpr_capped_threshold(y, s, g, 0.05)[0]
    assert per_source > pooled


def test_cap_rises_above_youden_only_when_needed():
    y = np.r_[np.zeros(50, int), np.ones(50, int)]
    s = np.r_[np.linspace(0, 0.4, 50), np.linspace(0.6, 1.0, 50)]
    g = np.r_[["a"] * 25, ["b"] * 25, ["f"] * 50]
    t, _ = M.fpr_capped_threshold(y, s, g, 0.05)
    assert 0.4 < t <= 0.6  # separable: every fake caught, no real flagged
    assert M.balanced_accuracy(y, (s >= t).astype(int), 2) == 1.0


def test_one_class_and_bad_arguments():
    assert M.fpr_capped_threshold([1, 1], [0.2, 0.3], ["a", "a"])[0] == 0.5
    with pytest.raises(ValueError):
        M.fpr_capped_threshold([0, 1], [0.2, 0.3], ["a"])
    with pytest.raises(ValueError):
        M.fpr_capped_threshold([0, 1], [0.2, 0.3], ["a", "b"], 1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.floats(0, 1)), min_size=4, max_size=60),
    st.sampled_from([0.0, 0.05, 0.2]),
)
def test_cap_always_holds(rows, cap):
    # label 0/1: reals of two sources, 2: fakes
    kind = np.array([k for k, _ in rows])
    s = np.array([v for _, v in rows])
    y = (kind == 2).astype(int)
    g = np.array(["a", "b", "f"])[kind]
    t, _ = M.fpr_capped_threshold(y, s, g, cap)
    if len(set(y)) < 2:
        return
    for src in ("a", "b"):
        real = s[(y == 0) & (g == src)]
        if real.size:
            assert np.mean(real >= t) <= cap + 1e-12
