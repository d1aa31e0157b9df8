"""The training config: one frozen dataclass tree for every detector, loaded from YAML.

    unmask train configs/resnet18.yaml --set optim.lr=3e-4 --set trainer.max_epochs=2

Classical detectors use `data`, `detector`, `output` and `seed` (and ignore the rest); CNNs
use all of it. See `configs/*.yaml` for one commented file per detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class DataConfig:
    manifest: str = ""  # manifest.csv written by `unmask prepare` (required)
    num_classes: Literal[2, 3] = 2  # 2: real/fake, 3: real/gan/edited
    input_size: int = 224  # crops are resized to this before the model
    sources: tuple[str, ...] = ()  # train/val only on these sources (empty: all)
    exclude_sources: tuple[str, ...] = ()  # e.g. held-out sources for cross-source tests
    max_per_class: int = 0  # cap rows per (split, label) for quick runs (0: no cap)
    num_workers: int = 0  # DataLoader workers (0: in the main process)
    batch_size: int = 32
    class_weights: bool = True  # weight the loss by inverse class frequency
    synth: tuple[str, ...] = ()  # on-the-fly fakes for training, e.g. ("blend",)
    synth_prob: float = 0.5  # chance a real training face is turned into a synthetic fake


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = 0.5
    color_jitter: float = 0.0  # strength of brightness/contrast/saturation jitter
    jpeg_prob: float = 0.0  # CNNDetection-style JPEG re-compression
    jpeg_quality: tuple[int, int] = (30, 100)
    blur_prob: float = 0.0  # Gaussian blur with sigma in blur_sigma
    blur_sigma: tuple[float, float] = (0.1, 3.0)
    resize_prob: float = 0.0  # down- then up-scale by a factor in resize_scale
    resize_scale: tuple[float, float] = (0.5, 1.0)


@dataclass(frozen=True)
class DetectorConfig:
    name: str = "resnet18"  # see `unmask.detectors.list_detectors()`
    pretrained: bool = False  # ImageNet weights through timm (needs a network)
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra builder arguments


@dataclass(frozen=True)
class OptimConfig:
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: Literal["cosine", "step", "none"] = "cosine"
    step_size: int = 10  # epochs, for schedule=step
    gamma: float = 0.1
    warmup_epochs: int = 0


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = 10
    patience: int = 3  # early stopping on the validation metric
    monitor: Literal["val_auc", "val_loss", "val_acc"] = "val_auc"
    accelerator: str = "auto"  # cpu, gpu, auto
    devices: Any = "auto"  # int or "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # e.g. ddp
    precision: str = "32-true"  # "16-mixed"/"bf16-mixed" on GPU
    limit_train_batches: float = 1.0
    log_every_n_steps: int = 10
    wandb: bool = False  # W&B logging (offline mode works without a network)
    wandb_project: str = "unmask"
    resume: str = ""  # Lightning checkpoint to resume from


@dataclass(frozen=True)
class ClassicalConfig:
    # Hyper-parameter grid searched on the validation split (never test).
    grid: dict[str, Any] = field(default_factory=dict)
    feature_size: int = 0  # resize crops to this before features (0: data.input_size)


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    classical: ClassicalConfig = field(default_factory=ClassicalConfig)
    output: str = "runs/model"  # the saved model folder
    seed: int = 0
