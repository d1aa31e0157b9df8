"""Balanced draws of crop rows (`training.sampling`) on hand-made lists."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.errors import UnmaskError
from unmask.training.sampling import balanced_row_weights


def _mass(w, mask):
    return float(np.sum(w[np.asarray(mask)]))


def test_scale_balance_makes_size_no_signal():
    # small faces: 90 reals of "u", 10 fakes of "c"; large: 5 reals of "y", 50 fakes of "s"
    labels = ["real"] * 90 + ["gan"] * 10 + ["real"] * 5 + ["gan"] * 50
    sources = ["u"] * 90 + ["c"] * 10 + ["y"] * 5 + ["s"] * 50
    sides = [100] * 100 + [500] * 55
    w = balanced_row_weights(labels, sources, "scale", sides, (200, 400))
    assert w.sum() == pytest.approx(1.0)
    fake = np.array([lab != "real" for lab in labels])
    small = np.array(sides) < 200
    for b in (small, ~small):  # each usable bin half the mass, half of it fake
        assert _mass(w, b) == pytest.approx(0.5)
        assert _mass(w, b & fake) == pytest.approx(0.25)
    # P(fake | size) is the same in every bin
    assert _mass(w, small & fake) / _mass(w, small) == pytest.approx(
        _mass(w, ~small & fake) / _mass(w, ~small)
    )


def test_sources_alike_within_a_class_and_one_class_bins_never_drawn():
    labels = ["real"] * 10 + ["real"] * 90 + ["gan"] * 20 + ["real"] * 7
    sources = ["a"] * 10 + ["b"] * 90 + ["g"] * 20 + ["z"] * 7
    sides = [100] * 120 + [900] * 7  # the 900 px bin has reals only
    w = balanced_row_weights(labels, sources, "scale", sides, (200, 400))
    src = np.array(sources)
    assert _mass(w, src == "a") == pytest.approx(_mass(w, src == "b")) == pytest.approx(0.25)
    assert _mass(w, src == "z") == 0.0
    w2 = balanced_row_weights(labels, sources, "source")
    assert _mass(w2, src == "z") == pytest.approx(1 / 6)
    assert _mass(w2, src == "g") == pytest.approx(0.5)


def test_none_and_errors():
    assert np.allclose(balanced_row_weights(["real", "gan"], ["a", "b"], "none"), 0.5)
    with pytest.raises(UnmaskError):
        balanced_row_weights(["real", "gan"], ["a", "b"], "bogus")
    with pytest.raises(UnmaskError):
        balanced_row_weights(["real", "gan"], ["a", "b"], "scale", [100, float("nan")], (200,))
    with pytest.raises(UnmaskError):  # no bin holds both classes
        balanced_row_weights(["real", "gan"], ["a", "b"], "scale", [100, 500], (200,))
