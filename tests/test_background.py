"""`BackgroundPredictor`: `unmask detect` finds faces while the model loads. What it says
before the load (spec, inputs, threshold) is what the loaded model says, it scores the
same, and a model that fails to load still stops the command in one line."""

from __future__ import annotations

import os

import numpy as np
import pytest

from doubles.models import tiny_torch_model
from unmask.data.tiles import TileSpec
from unmask.errors import UnmaskError
from unmask.inference.background import BackgroundPredictor
from unmask.inference.loader import load_predictor, saved_needs
from unmask.modelfile import WEIGHTS_FILE, default_model_dir, read_saved_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_torch_model(tmp_path_factory.mktemp("bg") / "tiny")


def test_needs_from_model_json_match_the_built_models(tmp_path) -> None:
    tiles = tiny_torch_model(tmp_path / "tiles", tiles=TileSpec(32, 4))
    for d in (default_model_dir(), tiles):
        assert saved_needs(d, read_saved_model(d)) == load_predictor(d).needs
    assert saved_needs(tiles, read_saved_model(tiles)).tiles == (TileSpec(32, 4),)
    default = saved_needs(default_model_dir(), read_saved_model(default_model_dir()))
    assert not default.tiles and not default.landmarks  # every member scores the crop


def test_scores_like_the_loaded_model(tiny) -> None:
    bg = BackgroundPredictor(tiny)
    direct = load_predictor(tiny)
    assert (bg.spec, bg.classes, bg.threshold) == (direct.spec, direct.classes, direct.threshold)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    np.testing.assert_array_equal(bg.predict_proba(crops), direct.predict_proba(crops))
    assert bg.input_size == direct.input_size  # other attributes: from the loaded model
    bg.threshold = 0.9  # a --threshold override stays on the wrapper
    assert bg.threshold == 0.9 and bg.ready().threshold == direct.threshold


def test_load_error_reaches_the_first_call_that_needs_the_network(tmp_path) -> None:
    d = tiny_torch_model(tmp_path / "bad")
    (d / WEIGHTS_FILE).write_bytes(b"not safetensors at all")
    bg = BackgroundPredictor(d)  # model.json is fine: nothing raised yet
    assert bg.spec.crop_size == 64
    with pytest.raises(UnmaskError, match="unreadable weights"):
        bg.predict_proba([np.zeros((64, 64, 3), np.uint8)])
    with pytest.raises(UnmaskError, match="unreadable weights"):
        bg.ready()  # every later call too


def test_detect_with_a_model_that_fails_to_load_prints_one_line(tmp_path, capsys) -> None:
    from PIL import Image

    from unmask.cli import main

    d = tiny_torch_model(tmp_path / "bad")
    (d / WEIGHTS_FILE).write_bytes(b"\x00" * 64)
    img = tmp_path / "x.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(img)
    code = main(["detect", str(img), "--model", str(d), "-q"])
    out, err = capsys.readouterr()
    assert code != 0
    assert out == ""  # no table header, no partial output
    assert len(err.strip().splitlines()) == 1 and "unreadable weights" in err


@pytest.mark.parametrize(("policy", "expect_limited"), [("PASSIVE", False), ("ACTIVE", True)])
def test_torch_threads_beside_face_threads(monkeypatch, policy, expect_limited) -> None:
    """Idle torch threads sleep under the passive policy, so torch keeps every core;
    spinning (active) threads get only the cores the face threads leave, then restored."""
    import torch

    from unmask.inference import detect

    monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    monkeypatch.setattr(detect, "_PASSIVE_SET_BEFORE_TORCH", None)  # as the env says
    monkeypatch.setattr(detect.os, "cpu_count", lambda: 4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        threads = detect._ModelThreads(workers=3)
        threads.limit()
        assert torch.get_num_threads() == (1 if expect_limited else 4)
        threads.restore()
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


def test_quiet_openmp_keeps_a_users_choice_and_knows_when_it_is_too_late(monkeypatch) -> None:
    """Before torch loads: the policy is set unless the user chose one. After (this test
    process has torch): nothing is set, and torch's threads are still limited."""
    import sys

    from unmask.inference import detect

    monkeypatch.setattr(detect, "_PASSIVE_SET_BEFORE_TORCH", None)
    torch_module = sys.modules.pop("torch")
    try:
        monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
        detect.quiet_openmp()
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and not detect._passive_openmp()
        monkeypatch.delenv("OMP_WAIT_POLICY")
        detect.quiet_openmp()
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and detect._passive_openmp()
    finally:
        sys.modules["torch"] = torch_module
    monkeypatch.delenv("OMP_WAIT_POLICY")
    detect.quiet_openmp()  # torch already loaded: too late to matter
    assert "OMP_WAIT_POLICY" not in os.environ and not detect._passive_openmp()
