"""The one Lightning engine that trains every CNN detector.

`train_cnn(cfg)` builds the detector from the registry, the datamodule from the manifest and
a `lightning.Trainer` from `cfg.trainer`, fits with early stopping and best-checkpoint
selection on the validation metric (`val_auc` by default: `unmask.metrics.roc_auc` of
P(fake) = 1 - softmax[:, 0] on the val split; the test split is never touched), then exports the
saved-model folder:

    OUT/weights.safetensors   best checkpoint's detector state dict
    OUT/model.json            kind "torch", detector + kwargs, classes, preprocess, input,
                              threshold (Youden's J on val), resolved config, val metrics
    OUT/checkpoints/*.ckpt    Lightning checkpoints, only for `trainer.resume`
    OUT/logs/tensorboard, OUT/logs/csv/metrics.csv (and W&B offline with trainer.wandb)

Multi-GPU / multi-node runs go through Lightning (`trainer.devices`, `num_nodes`,
`strategy: ddp`); only global rank 0 exports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from unmask.config import to_dict
from unmask.data.normalize import IMAGENET_MEAN, IMAGENET_STD
from unmask.detectors.cnn import build_cnn
from unmask.detectors.registry import DetectorInfo, resolve_name
from unmask.errors import UnmaskError
from unmask.labels import classes_for, label_to_index
from unmask.metrics import p_fake, roc_auc
from unmask.training.config import OptimConfig, TrainConfig


@dataclass(frozen=True)
class DetectorSpec:
    """The CNN a config asks for, resolved once: registry name, builder kwargs (with
    `input_size` injected for builders that size buffers to it) and the registry entry."""

    name: str
    kwargs: dict[str, Any]
    info: DetectorInfo

    def build(self, num_classes: int, pretrained: bool = False):
        try:
            return build_cnn(
                self.name, num_classes=num_classes, pretrained=pretrained, **self.kwargs
            )
        except TypeError as exc:  # e.g. detector.kwargs.backbone on a detector that fixes it
            raise UnmaskError(f"detector {self.name!r}: {str(exc)[:160]}") from None


def detector_spec(cfg: TrainConfig) -> DetectorSpec:
    from unmask.detectors.registry import family_detector

    name, kwargs = resolve_name(cfg.detector.name, cfg.detector.kwargs)
    info = family_detector(name, "cnn")
    if info.takes_input_size:
        kwargs.setdefault("input_size", cfg.data.input_size)
    return DetectorSpec(name, kwargs, info)


def binary_metrics(proba: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """AUC, accuracy (argmax) and loss on (N, C) probabilities; AUC is NaN with one class."""
    proba = np.asarray(proba, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    auc = roc_auc((targets > 0).astype(np.int64), p_fake(proba))
    acc = float((proba.argmax(1) == targets).mean()) if len(targets) else math.nan
    eps = 1e-7
    loss = float(-np.log(np.clip(proba[np.arange(len(targets)), targets], eps, 1.0)).mean())
    return {"auc": auc, "acc": acc, "loss": loss, "n": int(len(targets))}


class DetectorModule(L.LightningModule):
    """Cross-entropy training of any registered CNN detector; logs val_auc/acc/loss.

    Takes what it uses, by name (`detector_module` reads them off a TrainConfig): the
    detector, how many classes, whether its backbone starts from the `pretrained` extra's
    weights, the optimiser settings, the epoch count the LR schedule spans."""

    def __init__(
        self,
        spec: DetectorSpec,
        *,
        num_classes: int,
        pretrained: bool,
        optim: OptimConfig,
        max_epochs: int,
        channels_last: bool = False,
        class_weights: list[float] | None = None,
    ):
        super().__init__()
        self.optim = optim
        self.max_epochs = max_epochs
        self.model = spec.build(num_classes, pretrained=pretrained)
        self.channels_last = channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.needs_landmarks = spec.info.needs_landmarks
        w = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", w, persistent=False)
        self._val_proba: list[torch.Tensor] = []
        self._val_y: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x, landmarks) if self.needs_landmarks else self.model(x)

    def training_step(self, batch, batch_idx: int):
        x, lm, y = batch
        logits = self(x, lm)
        loss = F.cross_entropy(logits.float(), y, weight=self.class_weights)
        acc = (logits.argmax(1) == y).float().mean()
        n = y.shape[0]
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=n)
        self.log("train_acc", acc, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, lm, y = batch
        logits = self(x, lm).float()
        self._val_proba.append(torch.softmax(logits, 1).detach())
        self._val_y.append(y.detach())

    def on_validation_epoch_start(self) -> None:
        self._val_proba.clear()
        self._val_y.clear()

    def on_validation_epoch_end(self) -> None:
        if not self._val_proba:
            return
        proba = torch.cat(self._val_proba)
        y = torch.cat(self._val_y)
        if self.trainer.world_size > 1:  # DistributedSampler pads ranks to equal lengths
            proba = self.all_gather(proba).reshape(-1, proba.shape[1])
            y = self.all_gather(y).reshape(-1)
        m = binary_metrics(proba.cpu().numpy(), y.cpu().numpy())
        auc = 0.5 if math.isnan(m["auc"]) else m["auc"]
        self.log("val_auc", auc, prog_bar=True, sync_dist=True)
        self.log("val_acc", m["acc"], prog_bar=True, sync_dist=True)
        self.log("val_loss", m["loss"], sync_dist=True)
        self._val_proba.clear()
        self._val_y.clear()

    def configure_optimizers(self):
        o = self.optim
        params = [p for p in self.parameters() if p.requires_grad]
        if o.optimizer == "sgd":
            opt = torch.optim.SGD(
                params, lr=o.lr, momentum=0.9, weight_decay=o.weight_decay, nesterov=True
            )
        else:
            opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        if o.schedule == "none" and o.warmup_epochs <= 0:
            return opt
        lr_lambda = make_lr_lambda(
            o.schedule, self.max_epochs, o.warmup_epochs, o.step_size, o.gamma
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def detector_module(
    cfg: TrainConfig, spec: DetectorSpec, class_weights: list[float] | None = None
) -> DetectorModule:
    """The training module of a run: its arguments taken from `cfg`, and the resolved config
    logged with every checkpoint (hyper_parameters["config"]; experiments/artifact_eval.py
    rebuilds a screened checkpoint's detector from it)."""
    module = DetectorModule(
        spec,
        num_classes=cfg.data.num_classes,
        pretrained=cfg.detector.pretrained,
        optim=cfg.optim,
        max_epochs=cfg.trainer.max_epochs,
        channels_last=cfg.trainer.channels_last,
        class_weights=class_weights,
    )
    module.save_hyperparameters({"config": to_dict(cfg)})
    return module


def make_lr_lambda(schedule: str, max_epochs: int, warmup: int, step_size: int, gamma: float):
    """Epoch -> LR factor: linear warm-up, then cosine to 0 at `max_epochs`, step decay by
    `gamma` every `step_size` epochs, or constant."""

    def fn(epoch: int) -> float:
        if warmup > 0 and epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        e = epoch - max(warmup, 0)
        if schedule == "cosine":
            span = max(1, max_epochs - max(warmup, 0))
            return 0.5 * (1.0 + math.cos(math.pi * min(e, span) / span))
        if schedule == "step":
            return gamma ** (e // max(1, step_size))
        return 1.0

    return fn


def _loggers(cfg: TrainConfig, out: Path) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers: list[Any] = [
        TensorBoardLogger(save_dir=str(out), name="logs", version="tensorboard"),
        CSVLogger(save_dir=str(out), name="logs", version="csv"),
    ]
    if cfg.trainer.wandb:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise UnmaskError(
                "trainer.wandb needs the wandb package (pip install 'unmask[wandb]')"
            ) from None
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(
            WandbLogger(project=cfg.trainer.wandb_project, save_dir=str(out), offline=True)
        )
    return loggers


def _monitor_mode(monitor: str) -> str:
    return "min" if monitor == "val_loss" else "max"


def check_trainer(t) -> None:
    """The trainer values that Lightning would only fail on (or hang on) after the data is
    loaded, checked first: one line each."""
    import os

    gpu = t.accelerator in ("gpu", "cuda")
    if gpu and not torch.cuda.is_available():
        raise UnmaskError(f"trainer.accelerator={t.accelerator}: no CUDA GPU on this machine")
    if t.accelerator not in ("auto", "cpu", "gpu", "cuda", "mps"):
        raise UnmaskError(
            f"trainer.accelerator must be auto, cpu, gpu, cuda or mps, got {t.accelerator!r}"
        )
    on_cpu = t.accelerator == "cpu" or (t.accelerator == "auto" and not torch.cuda.is_available())
    n = len(t.devices) if isinstance(t.devices, list) else t.devices
    cores = os.cpu_count() or 1
    if on_cpu and isinstance(n, int) and n > cores:
        # Lightning starts n processes and waits for all of them: on fewer cores it hangs
        raise UnmaskError(f"trainer.devices={n}: this machine has {cores} CPU core(s)")
    if gpu and isinstance(n, int) and n > torch.cuda.device_count():
        raise UnmaskError(
            f"trainer.devices={n}: this machine has {torch.cuda.device_count()} GPU(s)"
        )
    if t.resume:
        if not Path(t.resume).is_file():
            raise UnmaskError(f"trainer.resume: checkpoint not found: {t.resume}")
        try:
            ckpt = torch.load(t.resume, map_location="cpu", weights_only=True)
        except Exception as exc:  # not a torch file at all, or one that runs code
            raise UnmaskError(
                f"trainer.resume: {t.resume} is not a checkpoint ({type(exc).__name__})"
            ) from None
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
            raise UnmaskError(f"trainer.resume: {t.resume} is not a Lightning checkpoint")


def train_cnn(cfg: TrainConfig) -> Path:
    """Train `cfg.detector` with Lightning and export the saved-model folder; returns it."""
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

    from unmask.training.datamodule import FaceDataModule, class_weights

    out = Path(cfg.output)
    t = cfg.trainer
    check_trainer(t)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    spec = detector_spec(cfg)  # resolved once; fails early on unknown names
    tiles = None
    if cfg.data.tiles.size > 0:  # native-pixel tiles (the artifact detector), never resized
        from unmask.training.tile_data import TileDataModule, tile_spec

        dm, tiles = TileDataModule(cfg), tile_spec(cfg)
    else:
        dm = FaceDataModule(cfg, with_landmarks=spec.info.needs_landmarks)
    dm.setup("fit")
    ds = dm.dataset("train", augment=False)
    synth_cls = (label_to_index("edited", cfg.data.num_classes),) if cfg.data.synth else ()
    weights = (
        class_weights(ds.targets, cfg.data.num_classes, synth_cls)
        if cfg.data.class_weights
        else None
    )
    module = detector_module(cfg, spec, class_weights=weights)
    if spec.info.fits_input_stats and not t.resume:
        loader = dm.plain_loader("train")
        module.model.fit_input_stats(x for x, _, _ in loader)

    ckpt_dir = out / "checkpoints"
    mode = _monitor_mode(t.monitor)
    ckpt = ModelCheckpoint(
        dirpath=str(ckpt_dir),
        filename="best-{epoch:02d}",
        monitor=t.monitor,
        mode=mode,
        save_top_k=1,
        save_last=True,
    )
    callbacks: list[Any] = [ckpt, EarlyStopping(monitor=t.monitor, mode=mode, patience=t.patience)]
    loggers = _loggers(cfg, out)
    callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    if cfg.optim.freeze_backbone_epochs > 0:
        from unmask.training.freeze import FreezeBackbone

        callbacks.append(FreezeBackbone(cfg.optim.freeze_backbone_epochs))
    trainer = L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        limit_train_batches=t.limit_train_batches,
        log_every_n_steps=t.log_every_n_steps,
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=str(out),
        enable_progress_bar=True,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=dm, ckpt_path=t.resume or None, weights_only=True)
    if not trainer.is_global_zero:
        return out
    best = ckpt.best_model_path or ckpt.last_model_path
    if not best:
        raise UnmaskError("training produced no checkpoint (no epoch finished)")
    export_model(cfg, spec, dm, Path(best), out, trainer, tiles=tiles)
    return out


def _predict(model, loader, needs_lm: bool, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    model.eval().to(device)
    probs, ys = [], []
    with torch.inference_mode():
        for x, lm, y in loader:
            x = x.to(device)
            logits = model(x, lm.to(device)) if needs_lm else model(x)
            probs.append(torch.softmax(logits.float(), 1).cpu())
            ys.append(y)
    return torch.cat(probs).numpy(), torch.cat(ys).numpy()


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def export_model(
    cfg: TrainConfig,
    spec: DetectorSpec,
    dm,
    best_ckpt: Path,
    out: Path,
    trainer=None,
    tiles: Any = None,
) -> Path:
    """Best checkpoint -> `weights.safetensors` + `model.json` (threshold and metrics on val).
    `tiles` (a `unmask.data.tiles.TileSpec`): the model scores native-pixel tiles of that
    spec (input size = tile size) and `dm.plain_loader("val")` yields one tile per item."""
    from safetensors.torch import save_file

    from unmask.data.spec import read_prepare_spec
    from unmask.metrics import best_threshold
    from unmask.modelfile import WEIGHTS_FILE, new_saved_model, write_saved_model

    ckpt = torch.load(best_ckpt, map_location="cpu", weights_only=True)
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model = spec.build(cfg.data.num_classes)
    model.load_state_dict(state, strict=True)
    needs_lm = spec.info.needs_landmarks
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, out / WEIGHTS_FILE)

    proba, y = _predict(model, dm.plain_loader("val"), needs_lm)
    val: dict[str, Any] = binary_metrics(proba, y)
    score = p_fake(proba)
    y_fake = (y > 0).astype(int)
    thr, rule = best_threshold(y_fake, score)
    pred = score >= thr
    if 0 < y_fake.sum() < len(y_fake):
        tpr = float(pred[y_fake == 1].mean())
        fpr = float(pred[y_fake == 0].mean())
        val.update(
            tpr_at_threshold=tpr,
            fpr_at_threshold=fpr,
            balanced_acc_at_threshold=(tpr + 1 - fpr) / 2,
        )
    train_info: dict[str, Any] = {
        "best_checkpoint": _relative(best_ckpt, out),
        "best_epoch": int(ckpt.get("epoch", -1)),
        "global_step": int(ckpt.get("global_step", -1)),
        "n_train": len(dm.train_df),
        "n_val": len(dm.val_df),
        "train_sources": sorted(set(dm.train_df["source"])),
        "config": to_dict(cfg),
    }
    if trainer is not None:
        train_info["epochs_run"] = int(trainer.current_epoch)
        score_t = trainer.checkpoint_callback.best_model_score
        if score_t is not None:
            train_info[f"best_{cfg.trainer.monitor}"] = float(score_t)
    preprocess, note = read_prepare_spec(cfg.data.manifest)
    if note:
        train_info["notes"] = [note]
    saved = new_saved_model(
        kind="torch",
        detector={"name": spec.name, "family": "cnn", "kwargs": spec.kwargs},
        classes=list(classes_for(cfg.data.num_classes)),
        preprocess=preprocess,
        input={
            "size": tiles.size if tiles is not None else cfg.data.input_size,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "landmarks": needs_lm,
            "tiles": None if tiles is None else to_dict(tiles),  # JSON: a plain mapping
            "resize": "PIL bilinear",
        },
        threshold=thr,
        threshold_rule=rule,
        metrics={"val": val},
        training=train_info,
    )
    write_saved_model(out, saved)
    return out
