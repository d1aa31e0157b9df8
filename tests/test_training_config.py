"""Training config: unknown keys, --set precedence, CLI wiring, dispatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from unmask.config import load_config
from unmask.errors import ConfigError
from unmask.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ["resnet18", "resnet18-dct", "xception", "efficientnet_b0", "f3net", "two-stream"]


def test_unknown_key_lists_valid_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("trainer:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(TrainConfig, p)
    msg = str(exc.value)
    assert "trainer.max_epoch" in msg and "max_epochs" in msg and "patience" in msg


def test_unknown_set_key_fails(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="optim.learning_rate"):
        load_config(TrainConfig, p, overrides=["optim.learning_rate=0.1"])


def test_set_override_wins_over_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lr: 0.1\ntrainer:\n  max_epochs: 7\ndata:\n  sources: [a, b]\n")
    cfg = load_config(TrainConfig, p, overrides=["optim.lr=0.002", "data.sources=c"])
    assert cfg.optim.lr == 0.002
    assert cfg.trainer.max_epochs == 7
    assert cfg.data.sources == ("c",)


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_load(name):
    from unmask.detectors.cnn import resolve_name
    from unmask.detectors.registry import detector_info

    cfg = load_config(TrainConfig, REPO / "configs" / f"{name}.yaml")
    assert cfg.detector.name == name
    assert detector_info(resolve_name(cfg.detector.name)[0]).family == "cnn"
    assert cfg.data.manifest == "work/prepared/manifest.csv"


def test_train_cli_reports_config_errors(tmp_path, capsys):
    from unmask.cli import main

    p = tmp_path / "c.yaml"
    p.write_text("detector:\n  nme: resnet18\n")
    assert main(["train", str(p)]) == 2
    assert "valid keys" in capsys.readouterr().err


def test_train_cli_unknown_detector(tmp_path, capsys):
    from unmask.cli import main

    p = tmp_path / "c.yaml"
    p.write_text("detector:\n  name: nope\n")
    assert main(["train", str(p)]) == 2
    assert "valid detectors" in capsys.readouterr().err


def test_lr_schedules():
    from unmask.training.engine import make_lr_lambda

    cos = make_lr_lambda("cosine", 10, 0, 10, 0.1)
    assert cos(0) == pytest.approx(1.0) and cos(5) == pytest.approx(0.5) and cos(10) < 1e-9
    step = make_lr_lambda("step", 10, 0, 3, 0.1)
    assert [round(step(e), 6) for e in (0, 2, 3, 6)] == [1.0, 1.0, 0.1, 0.01]
    warm = make_lr_lambda("none", 10, 2, 3, 0.1)
    assert warm(0) < warm(1) < warm(2) == 1.0


def test_threshold_youden_is_the_one_rule():
    import numpy as np

    from unmask import metrics
    from unmask.training import classical, engine

    score = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    t, rule = metrics.best_threshold(y, score)
    assert 0.3 < t <= 0.6 and rule == metrics.THRESHOLD_RULE
    # training has no threshold rule of its own
    assert not hasattr(engine, "choose_threshold") and not hasattr(classical, "choose_threshold")


@pytest.mark.parametrize(
    "override, match",
    [
        ("output=", "output"),
        ("output=.", "output"),
        ("output=[a,b]", "output: expected str"),
        ("data.input_size=-3", "input_size"),
        ("data.batch_size=0", "batch_size"),
        ("data.max_per_class=-1", "max_per_class"),
        ("data.sources={a: 1}", "expected a list"),
        ("classical.feature_size=60000", "feature_size"),
        ("augment.jpeg_quality=[90,10]", "jpeg_quality"),
        ("optim.lr=-1", "lr"),
    ],
)
def test_set_values_are_validated(override, match):
    from unmask.config import load_config
    from unmask.errors import ConfigError
    from unmask.training.config import TrainConfig

    with pytest.raises(ConfigError, match=match):
        load_config(TrainConfig, None, [override])


def test_class_weights():
    from unmask.training.datamodule import class_weights

    assert class_weights([0, 0, 0, 1], 2) == pytest.approx([2 / 3, 2.0])
    with pytest.raises(Exception, match="no"):
        class_weights([0, 0], 2)


def test_summary_counts_macs_and_params():
    import torch
    from torch import nn

    from unmask.training.summary import format_summary, summarize

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Linear(4 * 8 * 8, 2)

        def features(self, x):
            return torch.relu(self.conv(x)).flatten(1)

        def forward(self, x):
            return self.head(self.features(x))

    s = summarize(Tiny(), input_size=8)
    assert s.macs == 8 * 8 * 4 * 3 * 9 + 256 * 2
    assert s.total_params == (3 * 9 * 4 + 4) + (256 * 2 + 2) == s.trainable_params
    assert s.output_shape == (1, 2) and s.embed_shape == (1, 256)
    assert [r.name for r in s.layers] == ["conv", "head"]
    assert s.layers[0].output_shape == (1, 4, 8, 8)
    assert "MACs" in format_summary(s)


def test_summary_cli_on_config(capsys):
    from unmask.cli import main

    assert main(["summary", str(REPO / "configs" / "two-stream.yaml"), "--input-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "rgb_stream" in out and "landmark_stream" in out and "MACs per image" in out
