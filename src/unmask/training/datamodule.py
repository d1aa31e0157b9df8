"""Manifest -> PyTorch datasets and the Lightning datamodule used by the CNN engine.

Rows come from `unmask.data.manifest.read_manifest` (train and val splits only; the test
split is never read while training). Filters in this order: `data.sources`,
`data.exclude_sources`, then `data.max_per_class` (a seeded random sample of at most that
many rows per (split, label)). Each item is `(x, landmarks, y)`: the ImageNet-normalised
crop (3, S, S) at `data.input_size`, (468, 3) landmarks (zeros when the model does not use
them or the row has none) and the class index (`unmask.labels.label_to_index`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

# Crop/landmark readers are shared with eval, retrieval and synth (unmask.data.manifest).
from unmask.data.manifest import load_crop
from unmask.data.manifest import load_landmarks as load_landmarks_file
from unmask.errors import UnmaskError
from unmask.labels import classes_for, label_to_index
from unmask.training.augment import (
    augment_crop,
    flip_landmarks,
    jpeg_reencode,
    landmarks_array,
    resize_normalize,
)
from unmask.training.config import AugmentConfig, TrainConfig


def load_split(cfg: TrainConfig, split: str):
    """The manifest rows of one split after the config's source filters and cap."""
    from unmask.data.manifest import read_manifest

    if not cfg.data.manifest:
        raise UnmaskError("data.manifest is not set (the manifest.csv from `unmask prepare`)")
    from unmask.training.rows import select_rows

    df = read_manifest(cfg.data.manifest, split=split)
    data = cfg.data
    if split == "val" and data.val_max_per_class > 0:
        import dataclasses

        data = dataclasses.replace(data, max_per_class=data.val_max_per_class)
    df = select_rows(df, data, cfg.seed)
    return df


def manifest_dir(cfg: TrainConfig) -> Path:
    from unmask.data.manifest import manifest_path

    return manifest_path(cfg.data.manifest).parent


class FaceDataset(Dataset):
    """Crops (and landmarks) of manifest rows; augmented when `augment` is given."""

    def __init__(
        self,
        df,
        num_classes: int,
        input_size: int,
        augment: AugmentConfig | None = None,
        with_landmarks: bool = False,
        synth: tuple[str, ...] = (),
        synth_prob: float = 0.0,
        pairs: bool = False,
        synth_parts: float = 0.0,
        fixed_seed: int | None = None,
        jpeg_quality: int = 0,
    ) -> None:
        self.paths = list(df["abs_path"])
        lms = df["abs_landmarks"] if "abs_landmarks" in df.columns else [""] * len(df)
        self.landmark_paths = list(lms)
        self.labels = list(df["label"])
        self.targets = [label_to_index(lab, num_classes) for lab in self.labels]
        self.num_classes = num_classes
        self.input_size = input_size
        self.augment = augment
        self.with_landmarks = with_landmarks
        self.synth = tuple(synth)
        self.synth_prob = synth_prob
        # pairs: item i is (its crop, its blend) stacked, flattened by `pair_collate`.
        self.pairs = bool(pairs and synth)
        self.synth_parts = synth_parts
        # fixed_seed: deterministic blends without augmentation (validation pairs).
        self.fixed_seed = fixed_seed
        # un-augmented items re-encoded at this quality (data.val_jpeg; 0: as stored)
        self.jpeg_quality = int(jpeg_quality)
        for s in self.synth:
            if s != "blend":
                raise UnmaskError(f"data.synth: unknown on-the-fly fake {s!r}; valid: blend")

    def __len__(self) -> int:
        return len(self.paths)

    def _blend(self, img, lm, rng):
        from unmask.synth.blend import choose_region, self_blend

        region = choose_region(rng, self.synth_parts) if len(lm) == 468 else "face"
        return self_blend(img, lm, rng, region=region)[0]

    def _pair(self, i: int):
        """(2, 3, S, S), (2, 468, 3), (2,): the row and its blend (a fake row: itself twice),
        both through the same augmentation draw."""
        img = load_crop(self.paths[i])
        y = self.targets[i]
        lm = load_landmarks_file(self.landmark_paths[i])
        if self.fixed_seed is not None:
            rng = np.random.default_rng([self.fixed_seed, i])
        else:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        imgs, ys = [img, img], [y, y]
        if y == 0 and lm is not None:
            imgs[1], ys[1] = self._blend(img, lm, rng), label_to_index("edited", self.num_classes)
        lms = [lm, lm]
        if self.augment is not None:
            aug_seed = int(rng.integers(0, 2**31 - 1))
            for k in range(2):  # the same draw for both: same JPEG quality, resize, flip
                rng_k = np.random.default_rng(aug_seed)
                imgs[k], flipped = augment_crop(imgs[k], self.augment, rng_k)
                if flipped and lms[k] is not None:
                    lms[k] = flip_landmarks(lms[k])
        x = torch.stack([torch.from_numpy(resize_normalize(a, self.input_size)) for a in imgs])
        lm_t = torch.stack(
            [torch.from_numpy(landmarks_array(m if self.with_landmarks else None)) for m in lms]
        )
        return x, lm_t, torch.tensor(ys, dtype=torch.long)

    def __getitem__(self, i: int):
        if self.pairs:
            return self._pair(i)
        img = load_crop(self.paths[i])
        y = self.targets[i]
        need_lm = self.with_landmarks or bool(self.synth)
        lm = load_landmarks_file(self.landmark_paths[i]) if need_lm else None
        if self.augment is not None:
            # torch's RNG is seeded by seed_everything (and per worker), so runs repeat.
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            if self.synth and y == 0 and lm is not None and rng.random() < self.synth_prob:
                img = self._blend(img, lm, rng)
                y = label_to_index("edited", self.num_classes)
            img, flipped = augment_crop(img, self.augment, rng)
            if flipped and lm is not None:
                lm = flip_landmarks(lm)
        elif self.jpeg_quality > 0:
            img = jpeg_reencode(img, self.jpeg_quality)
        x = torch.from_numpy(resize_normalize(img, self.input_size))
        lm_t = torch.from_numpy(landmarks_array(lm if self.with_landmarks else None))
        return x, lm_t, y


def class_weights(
    targets: list[int], num_classes: int, may_be_missing: tuple[int, ...] = ()
) -> list[float]:
    """Inverse-frequency weights n / (C * n_c), so a balanced set gets all ones. A class
    with no rows is an error unless listed in `may_be_missing` (made on the fly by
    `data.synth`); it then gets weight 1."""
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=num_classes)
    missing = [c for c in np.flatnonzero(counts == 0) if c not in may_be_missing]
    if missing:
        names = [classes_for(num_classes)[c] for c in missing]
        raise UnmaskError(f"training split has no {', '.join(names)} rows")
    w = np.ones(num_classes, dtype=np.float64)
    seen = counts > 0
    w[seen] = counts[seen].sum() / (seen.sum() * counts[seen])
    return w.astype(float).tolist()


def pair_collate(batch):
    """Default collate, then (B, 2, ...) -> (2B, ...) for `FaceDataset` pairs."""
    from torch.utils.data import default_collate

    return tuple(t.flatten(0, 1) for t in default_collate(batch))


def _check_both_classes(df, split: str, synth: bool = False) -> None:
    if len(df) == 0:
        raise UnmaskError(f"the {split} split is empty after data filters")
    labels = set(df["label"])
    if synth:  # fakes are made from the reals on the fly
        if "real" not in labels:
            raise UnmaskError(f"the {split} split has no real rows to blend")
        return
    if "real" not in labels or not labels - {"real"}:
        raise UnmaskError(f"the {split} split needs both real and fake rows (has {sorted(labels)})")


class FaceDataModule(L.LightningDataModule):
    """Train/val loaders from the manifest; `setup` is idempotent."""

    def __init__(self, cfg: TrainConfig, with_landmarks: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.with_landmarks = with_landmarks
        self.train_df: Any = None
        self.val_df: Any = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_df is not None:
            return
        self.train_df = load_split(self.cfg, "train")
        self.val_df = load_split(self.cfg, "val")
        d = self.cfg.data
        _check_both_classes(self.train_df, "train", bool(d.synth))
        _check_both_classes(self.val_df, "val", bool(d.synth and d.val_synth))

    def dataset(self, split: str, augment: bool | None = None) -> FaceDataset:
        self.setup()
        d = self.cfg.data
        train = split == "train"
        aug = train if augment is None else augment
        return FaceDataset(
            self.train_df if train else self.val_df,
            d.num_classes,
            d.input_size,
            augment=self.cfg.augment if aug else None,
            with_landmarks=self.with_landmarks,
            synth=d.synth if (aug or (not train and d.val_synth)) else (),
            synth_prob=d.synth_prob,
            pairs=d.synth_pairs or (not train and d.val_synth),
            synth_parts=d.synth_parts,
            fixed_seed=None if aug else self.cfg.seed,
            jpeg_quality=0 if aug else d.val_jpeg,
        )

    def _sampler(self, ds: FaceDataset):
        """`data.epoch_size` balanced draws (unmask.training.sampling); None: plain shuffle."""
        d = self.cfg.data
        if d.balance == "none" and d.epoch_size == 0:
            return None
        from torch.utils.data import WeightedRandomSampler

        from unmask.training.sampling import balanced_row_weights

        df = self.train_df
        sides = None
        if d.balance == "scale":
            from unmask.data.manifest import row_box_sides

            sides = row_box_sides(df)
        w = balanced_row_weights(
            list(df["label"]), list(df["source"]), d.balance, sides, d.scale_edges
        )
        n = d.epoch_size or len(ds)
        return WeightedRandomSampler(torch.as_tensor(w, dtype=torch.double), n, replacement=True)

    def _loader(self, ds: FaceDataset, shuffle: bool, sampler=None) -> DataLoader:
        w = self.cfg.data.num_workers
        return DataLoader(
            ds,
            batch_size=self.cfg.data.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=w,
            persistent_workers=w > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=pair_collate if ds.pairs else None,
        )

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train")
        return self._loader(ds, shuffle=True, sampler=self._sampler(ds))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("val"), shuffle=False)

    def plain_loader(self, split: str) -> DataLoader:
        """No augmentation, no shuffle (input statistics, validation predictions)."""
        return self._loader(self.dataset(split, augment=False), shuffle=False)
