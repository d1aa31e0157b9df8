from dataclasses import dataclass, field
from typing import Literal

import pytest

from unmask.config import load_config, parse_overrides, to_dict
from unmask.errors import ConfigError
from unmask.training.config import TrainConfig


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    size: int = 8
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)


def test_defaults_yaml_overrides_precedence(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("size: 16\ninner:\n  lr: 0.5\n")
    cfg = load_config(Outer, cfg_file, overrides=["inner.lr=0.01", "sizes=3,4"])
    assert cfg.name == "x"  # default
    assert cfg.size == 16  # YAML
    assert cfg.inner.lr == 0.01  # --set wins over YAML
    assert cfg.sizes == (3, 4)


def test_unknown_key_lists_valid_keys(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("sise: 16\n")
    with pytest.raises(ConfigError, match="sise.*valid keys.*inner, name, size, sizes"):
        load_config(Outer, cfg_file)
    with pytest.raises(ConfigError, match="inner.momentum"):
        load_config(Outer, None, overrides=["inner.momentum=0.9"])


@pytest.mark.parametrize(
    "text, match",
    [
        ("size: [1, 2\n", "invalid YAML"),
        ("- 1\n- 2\n", "mapping"),
        ("size: big\n", "expected int"),
        ("inner:\n  mode: c\n", "not one of"),
    ],
)
def test_bad_yaml_is_one_line_error(tmp_path, text, match):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(Outer, f)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, "/nonexistent/x.yaml")


def test_frozen_and_round_trip():
    cfg = load_config(TrainConfig, None, overrides=["data.num_classes=3", "optim.lr=0.02"])
    with pytest.raises(AttributeError):
        cfg.seed = 3  # type: ignore[misc]
    again = load_config(TrainConfig, None, extra=to_dict(cfg))
    assert again == cfg


def test_parse_overrides_types():
    assert parse_overrides(["a.b=1", "c=true", "d=x"]) == {"a": {"b": 1}, "c": True, "d": "x"}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])


def test_empty_mapping_override_clears(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("detector:\n  name: timm\n  kwargs:\n    backbone: resnet10t\n")
    cfg = load_config(TrainConfig, f, overrides=["detector.kwargs={}"])
    assert cfg.detector.kwargs == {}
    cfg = load_config(TrainConfig, f, overrides=["detector.kwargs.drop_rate=0.1"])
    assert cfg.detector.kwargs == {"backbone": "resnet10t", "drop_rate": 0.1}


def test_unknown_key_with_a_newline_stays_on_one_line():
    from unmask.config import from_dict
    from unmask.errors import ConfigError
    from unmask.training.config import OptimConfig

    with pytest.raises(ConfigError) as info:
        from_dict(OptimConfig, {"lr\nx": 1.0})
    assert "\n" not in str(info.value) and "'lr\\nx'" in str(info.value)
