"""`unmask train` dispatch: one entry point for every detector family.

    from unmask.training.run import train
    model_dir = train(cfg)   # TrainConfig -> the saved-model folder (cfg.output)

`TRAINERS` names each family's trainer: "classical" goes to
`unmask.training.classical.train_classical`, "cnn" to the Lightning engine
(`unmask.training.engine.train_cnn`). A new family is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unmask.training.config import TrainConfig


def _train_classical(cfg: TrainConfig) -> Path:
    from unmask.training.classical import train_classical

    return Path(train_classical(cfg))


def _train_cnn(cfg: TrainConfig) -> Path:
    from unmask.training.engine import train_cnn

    return Path(train_cnn(cfg))


# detector family -> its trainer (each imports its own stack only when called)
TRAINERS: dict[str, Callable[[TrainConfig], Path]] = {
    "classical": _train_classical,
    "cnn": _train_cnn,
}


def train(cfg: TrainConfig) -> Path:
    """Train the detector `cfg` names and return its saved-model folder."""
    from unmask.detectors.registry import detector_info, resolve_name

    name, _ = resolve_name(cfg.detector.name, cfg.detector.kwargs)
    family = detector_info(name).family
    if family not in TRAINERS:
        from unmask.errors import ConfigError

        raise ConfigError(f"detector {name!r} has unknown family {family!r}")
    return TRAINERS[family](cfg)
