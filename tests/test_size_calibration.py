"""Face-size calibration of a composite member (issue 13): a native-pixel member's evidence
depends on how many pixels a face has, so its Platt calibration may be fitted per crop-box
size bin. Hand-made arrays: which (a, b) each face gets, what the fit learns from an
uninformative bin, the schema and the flag."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unmask.errors import UnmaskError
from unmask.evaluation.compose import MIN_PER_CLASS, fit_fusion
from unmask.inference.composite import calibrated_logits, calibration, fuse, logit
from unmask.modelfile import Fusion, FusionMember


def _fusion() -> Fusion:
    sized = FusionMember(
        "artifact",
        a=1.0,
        b=0.5,
        size_edges=(100.0, 200.0),
        size_a=(2.0, 3.0, 0.0),
        size_b=(-1.0, 0.0, 0.25),
    )
    return Fusion("max", (sized, FusionMember("blend", a=1.0, b=0.0)))


def test_each_face_gets_its_bins_calibration() -> None:
    """Sides 50 | 100 (an edge belongs to the bin above) | 150 | 250 | unknown."""
    sides = np.array([50.0, 100.0, 150.0, 250.0, np.nan])
    a, b = calibration(_fusion(), sides, 5)
    assert a[:, 0].tolist() == [2.0, 3.0, 3.0, 0.0, 1.0]
    assert b[:, 0].tolist() == [-1.0, 0.0, 0.0, 0.25, 0.5]
    assert a[:, 1].tolist() == [1.0] * 5 and b[:, 1].tolist() == [0.0] * 5
    assert np.array_equal(calibration(_fusion(), None, 2)[0][:, 0], [1.0, 1.0])  # no sides


def test_fused_score_by_hand() -> None:
    p = np.array([[0.5, 0.2], [0.9, 0.2]])
    sides = np.array([250.0, 50.0])
    z = calibrated_logits(p, _fusion(), sides)
    # face 0: large, artifact a=0 b=0.25 -> z 0.25; face 1: small, 2 * logit(0.9) - 1
    assert z[0, 0] == pytest.approx(0.25)
    assert z[1, 0] == pytest.approx(2 * np.log(9) - 1)
    score, driver = fuse(p, _fusion(), sides)
    assert score[0] == pytest.approx(1 / (1 + np.exp(-0.25))) and driver.tolist() == [0, 0]


def test_fit_learns_that_a_bin_carries_no_evidence() -> None:
    """Small faces: P(fake) separates the classes. Large faces: P(fake) is noise, and 80%
    of them are fake. The large bin gets a slope near 0 and, classes balanced, an intercept
    near 0: its faces score about 1/2, whatever their share of fakes in val."""
    rng = np.random.default_rng(0)
    n = 400
    small_y = rng.integers(0, 2, n)
    small_p = np.clip(0.5 + 0.35 * (2 * small_y - 1) + rng.normal(0, 0.1, n), 0.01, 0.99)
    large_y = (rng.random(n) < 0.8).astype(int)
    large_p = rng.uniform(0.4, 0.7, n)
    p = np.concatenate([small_p, large_p])[:, None]
    y = np.concatenate([small_y, large_y])
    sides = np.concatenate([np.full(n, 100.0), np.full(n, 500.0)])
    (m,) = fit_fusion(p, y, ["artifact"], "max", sides, [(300.0,)]).members
    assert m.size_edges == (300.0,)
    assert m.size_a[0] > 1.0  # small faces: strong evidence
    assert abs(m.size_a[1]) < 0.5 and abs(m.size_b[1]) < 0.3  # large faces: none
    z_large = m.size_a[1] * logit(large_p) + m.size_b[1]
    assert abs(1 / (1 + np.exp(-z_large)).mean() - 0.5) < 0.05


def test_a_bin_with_too_few_faces_keeps_the_members_calibration() -> None:
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 100)
    p = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.1, 200), 0.01, 0.99)[:, None]
    sides = np.full(200, 100.0)
    sides[: 2 * MIN_PER_CLASS - 2] = 500.0  # MIN_PER_CLASS - 1 of each class are large
    (m,) = fit_fusion(p, y, ["artifact"], "max", sides, [(300.0,)]).members
    assert (m.size_a[1], m.size_b[1]) == (m.a, m.b)
    assert m.size_a[0] != m.a


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size_edges": (100.0,), "size_a": (1.0,), "size_b": (0.0,)},  # one value, two bins
        {"size_edges": (200.0, 100.0), "size_a": (1.0,) * 3, "size_b": (0.0,) * 3},
        {"size_edges": (-5.0,), "size_a": (1.0,) * 2, "size_b": (0.0,) * 2},
        {"size_edges": (100.0,), "size_a": (1.0, float("nan")), "size_b": (0.0, 0.0)},
        {"size_a": (1.0,), "size_b": (0.0,)},  # values without edges
    ],
)
def test_schema_refuses_inconsistent_size_calibration(kwargs) -> None:
    with pytest.raises(ValueError):
        FusionMember("artifact", **kwargs)


def test_a_model_json_written_before_size_calibration_still_reads(tmp_path) -> None:
    """Format 2 files from before these keys existed: same model, no size calibration."""
    from unmask.modelfile import read_saved_model
    from unmask.modelfile.io import MODEL_JSON

    src = read_saved_model(_shipped())
    data = json.loads((_shipped() / MODEL_JSON).read_text())
    for m in data["fusion"]["members"]:
        for k in ("size_edges", "size_a", "size_b"):
            m.pop(k, None)
    (tmp_path / MODEL_JSON).write_text(json.dumps(data))
    old = read_saved_model(tmp_path)
    assert all(not m.size_edges for m in old.fusion.members)
    assert [m.a for m in old.fusion.members] == [m.a for m in src.fusion.members]


def _shipped():
    from unmask.modelfile import default_model_dir

    return default_model_dir()


@pytest.mark.parametrize(
    "text", ["artifact", "artifact=", "artifact=abc", "=100", "a=300,200", "a=0"]
)
def test_size_calibrate_flag_errors_are_one_line(text: str) -> None:
    from unmask.commands.compose import parse_size_edges

    with pytest.raises(UnmaskError, match="--size-calibrate") as err:
        parse_size_edges(text)
    assert "\n" not in str(err.value)


def test_size_calibrate_flag_parses() -> None:
    from unmask.commands.compose import parse_size_edges

    assert parse_size_edges("artifact=200,400") == ("artifact", (200.0, 400.0))


def _informative_small_noisy_large(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 400
    small_y = rng.integers(0, 2, n)
    small_p = np.clip(0.5 + 0.35 * (2 * small_y - 1) + rng.normal(0, 0.1, n), 0.01, 0.99)
    large_y = rng.integers(0, 2, n)
    large_p = rng.uniform(0.4, 0.7, n)
    p = np.concatenate([small_p, large_p])[:, None]
    y = np.concatenate([small_y, large_y])
    sides = np.concatenate([np.full(n, 100.0), np.full(n, 500.0)])
    return p, y, sides


@pytest.mark.parametrize(("rule", "silent_b"), [("max", -30.0), ("logistic", 0.0)])
def test_abstain_silences_the_member_where_val_shows_no_evidence(rule, silent_b) -> None:
    """Small faces: the member keeps its overall calibration. Large faces (P(fake) is
    noise): slope 0 and a logit that never wins the max (-30) or adds nothing to the
    stacking sum (0)."""
    from unmask.evaluation.compose import ABSTAIN

    p, y, sides = _informative_small_noisy_large()
    fusion = fit_fusion(p, y, ["artifact"], rule, sides, [(300.0,)], "abstain")
    (m,) = fusion.members
    assert (m.size_a[0], m.size_b[0]) == (m.a, m.b)
    assert m.size_a[1] == 0.0 and m.size_b[1] == silent_b
    if rule == "max":
        assert m.size_b[1] == -ABSTAIN


def test_unknown_size_mode_is_one_line() -> None:
    from unmask.evaluation.compose import size_calibration

    p, y, sides = _informative_small_noisy_large()
    with pytest.raises(UnmaskError, match="platt, abstain"):
        size_calibration(logit(p[:, 0]), y, sides, (300.0,), 1.0, 0.0, mode="median")
