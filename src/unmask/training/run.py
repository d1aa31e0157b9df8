"""`unmask train` dispatch: one entry point for every detector family.

    from unmask.training.run import train
    model_dir = train(cfg)   # TrainConfig -> the saved-model folder (cfg.output)

Family "classical" goes to `unmask.training.classical.train_classical`, family "cnn" to the
Lightning engine (`unmask.training.engine.train_cnn`).
"""

from __future__ import annotations

from pathlib import Path

from unmask.training.config import TrainConfig


def train(cfg: TrainConfig) -> Path:
    """Train the detector `cfg` names and return its saved-model folder."""
    from unmask.detectors.registry import detector_info, resolve_name

    name, _ = resolve_name(cfg.detector.name, cfg.detector.kwargs)
    family = detector_info(name).family
    if family == "classical":
        from unmask.training.classical import train_classical

        return Path(train_classical(cfg))
    if family == "cnn":
        from unmask.training.engine import train_cnn

        return train_cnn(cfg)
    from unmask.errors import ConfigError

    raise ConfigError(f"detector {name!r} has unknown family {family!r}")
