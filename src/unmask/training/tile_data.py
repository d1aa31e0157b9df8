"""Native-pixel tile datasets for the artifact detector (`data.tiles.size > 0`).

Every row of the manifest names its decoded `original` and the square face box (read by
`unmask.data.extract`, as eval reads them); tiles are cut from the original at integer
coordinates (`unmask.data.tiles.cut_tiles`), never resized.
Decoding a 600-768 px original per sample is too slow on a CPU, so each training row is
decoded once at setup and `tiles.pool` random grid-aligned tiles are kept in memory (uint8);
every sample then draws one of them and re-augments it:

    tile -> [simulated upsampling fake, data.synth: [upsample]] -> [noise]
         -> augment_crop: [blur] -> JPEG (augment.jpeg_prob 1: every class alike) -> [flip]

Training samples are drawn class- and source-balanced (one epoch = `tiles.epoch_size`
samples): half real (a real source uniformly, then a row), half fake; a fake is a simulated
upsampling fake of a real tile with probability `data.synth_prob` (always, when the split
has no synthesised rows), else a tile of a synthesised row (a fake source uniformly).
With `tiles.balance: scale` a face-size bin is drawn first and both classes come from it
(simulated fakes from that bin's reals): in the shared data the synthesised faces are
mostly large (generated_photos, sdfd) and the reals mostly small, and a detector trained
source-balanced learns "many pixels per face = fake" (it flagged 84% of yonsei's 600 px
reals and scored the 128 px celeba_gan faces as real).
Resize augmentation is refused: it would erase the very trace the model reads. Video rows
(`frame` >= 0) are skipped: decoding a video up to each frame is too slow for a tile pool.

Validation items are whole faces: the `tiles.count` deterministic tiles of `cut_tiles`
(what `detect`/`eval` cut), each re-encoded at `tiles.val_jpeg`, shape (count, 3, S, S); the
detector averages their logits. With `data.synth`, a seeded share of val reals also gives
one simulated fake each, so model selection rewards the general trace, not only the
training generators. Items are `(x, landmarks zeros, y)` like `FaceDataset`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from unmask.data.extract import decode_original, row_box
from unmask.data.normalize import normalize_tiles  # the one tile normalisation (inference's)
from unmask.data.tiles import TileSpec, cut_tiles
from unmask.errors import ConfigError, UnmaskError
from unmask.labels import label_to_index
from unmask.training.augment import jpeg_reencode
from unmask.training.config import AugmentConfig, TrainConfig

# upsample: a real tile down-scaled and up-scaled (replaces it); upsample_trace: only the
# upsampler's periodic residue added to the real tile (keeps its fine detail)
SYNTH_KINDS: tuple[str, ...] = ("upsample", "upsample_trace")


def tile_spec(cfg: TrainConfig) -> TileSpec:
    """The inference TileSpec of a tile config (saved with the model)."""
    t = cfg.data.tiles
    return TileSpec(size=t.size, count=t.count, region=t.region, align=t.align)


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings that would defeat native pixels."""
    if cfg.data.tiles.size <= 0:
        raise ConfigError("data.tiles.size must be > 0 for tile training")
    if cfg.augment.resize_prob > 0:
        raise ConfigError(
            "augment.resize_prob must be 0 with data.tiles (resizing erases the trace)"
        )
    bad = [s for s in cfg.data.synth if s not in SYNTH_KINDS]
    if bad:
        raise ConfigError(f"data.synth with tiles: unknown {bad}; valid: {', '.join(SYNTH_KINDS)}")
    if cfg.data.tiles.pool < 1:
        raise ConfigError("data.tiles.pool must be >= 1")
    edges = cfg.data.tiles.scale_edges
    if any(e <= 0 for e in edges) or list(edges) != sorted(set(edges)):
        raise ConfigError("data.tiles.scale_edges must be positive and increasing")
    if any(not 0.0 < f < 1.0 for f in cfg.data.tiles.down_reals):
        raise ConfigError("data.tiles.down_reals: factors must be in (0, 1)")


def with_originals(df):
    """`df` (from `read_manifest`) plus `abs_original`: each row's original as
    `unmask.data.extract.original_path` finds it (the one rule eval and detect use too)."""
    from unmask.data.extract import original_path

    if "original" not in df.columns:
        raise UnmaskError("the manifest has no `original` column (re-run `unmask prepare`)")
    df = df.copy()
    df["abs_original"] = [str(original_path(r)) for r in df.to_dict("records")]
    return df


def cap_per_source(df, cap: int, seed: int):
    """At most `cap` rows per (source, label), a seeded sample; order kept."""
    if cap <= 0 or not len(df):
        return df
    keep = []
    for _, idx in sorted(df.groupby(["source", "label"]).groups.items()):
        idx = np.asarray(sorted(idx))
        rng = np.random.default_rng(seed)
        keep.extend(idx[rng.permutation(len(idx))[:cap]] if len(idx) > cap else idx)
    return df.loc[sorted(keep)].reset_index(drop=True)


def downscale(img: np.ndarray, box: tuple[int, int, int, int] | None, factor: float):
    """The image shrunk by `factor` with area averaging, and the box in its pixels."""
    import cv2

    h, w = img.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return small, None if box is None else tuple(int(round(v * factor)) for v in box)


def _cut_all(
    df,
    spec: TileSpec,
    seed: int | None,
    desc: str,
    progress: bool = True,
    down_reals: Sequence[float] = (),
):
    """(N, K, S, S, 3) uint8: K tiles per row (random grid-aligned origins when `seed` is
    not None, else the deterministic inference grid). Unreadable rows are dropped with a
    warning; returns (tiles, kept row positions, face-box side in pixels per kept row; the
    image's shorter side when a row has no box, smaller reals). With `down_reals`, every
    real row is also cut from its original shrunk by each factor, from the same decode:
    the last item holds, per factor, (tiles, kept row positions, sides)."""
    import warnings

    from tqdm.auto import tqdm

    def side(img: np.ndarray, box) -> float:
        return float(box[2] - box[0]) if box is not None else float(min(img.shape[:2]))

    out, kept, sides = [], [], []
    smaller: list[tuple[list, list, list]] = [([], [], []) for _ in down_reals]
    n_real = 0
    rows = df.to_dict("records")
    for i, row in enumerate(tqdm(rows, desc=desc, disable=not progress, leave=False)):
        real, j = row.get("label") == "real", n_real  # j: the row's place among the reals
        n_real += real
        try:
            img = decode_original(row)
        except (UnmaskError, OSError, ValueError) as exc:
            warnings.warn(f"tiles: skipping {row['abs_original']}: {exc}", stacklevel=2)
            continue
        rng = np.random.default_rng([seed, i]) if seed is not None else None
        box = row_box(row)
        out.append(cut_tiles(img, box, spec, rng))
        kept.append(i)
        sides.append(side(img, box))
        for k, factor in enumerate(down_reals if real else ()):
            small, small_box = downscale(img, box, factor)
            rng_k = np.random.default_rng([(seed or 0) + 1 + k, j])
            smaller[k][0].append(cut_tiles(small, small_box, spec, rng_k))
            smaller[k][1].append(i)
            smaller[k][2].append(side(small, small_box))
    if not out:
        raise UnmaskError(f"{desc}: no readable originals")
    return np.stack(out), kept, sides, [(np.stack(t), k, s) for t, k, s in smaller if t]


class TileTrainDataset(Dataset):
    """Balanced random tile samples from per-row pools; see the module docstring."""

    def __init__(
        self,
        pools: np.ndarray,  # (N, K, S, S, 3) uint8
        labels: list[str],
        sources: list[str],
        augment: AugmentConfig,
        num_classes: int,
        epoch_size: int,
        synth: tuple[str, ...] = (),
        synth_prob: float = 0.0,
        noise_prob: float = 0.0,
        noise_std: float = 0.0,
        sides: list[float] | None = None,
        scale_edges: tuple[int, ...] | None = None,
    ) -> None:
        self.pools = pools
        self.augment = augment
        self.num_classes = num_classes
        self.epoch_size = int(epoch_size)
        self.synth = tuple(synth)
        self.synth_prob = float(synth_prob)
        self.noise_prob, self.noise_std = float(noise_prob), float(noise_std)
        self.targets = [label_to_index(lab, num_classes) for lab in labels]
        self.real_by_source = _group(labels, sources, real=True)
        self.fake_by_source = _group(labels, sources, real=False)
        if not self.real_by_source:
            raise UnmaskError("tile training needs real rows")
        if not self.fake_by_source and not self.synth:
            raise UnmaskError("tile training needs fake rows or data.synth: [upsample]")
        self.sim_label = label_to_index("gan", num_classes)
        # balance "scale": the same two groupings per face-size bin (bins without reals
        # are dropped: a simulated fake needs a real tile of that size)
        self.bins: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
        if scale_edges is not None:
            if sides is None or len(sides) != len(labels):
                raise UnmaskError("scale balance needs one face size per row")
            b = np.searchsorted(np.asarray(scale_edges, float), np.asarray(sides, float), "right")
            for k in range(len(scale_edges) + 1):
                idx = np.flatnonzero(b == k)
                labs, srcs = [labels[i] for i in idx], [sources[i] for i in idx]
                real = [idx[g] for g in _group(labs, srcs, real=True)]
                fake = [idx[g] for g in _group(labs, srcs, real=False)]
                if real:
                    self.bins.append((real, fake))

    def __len__(self) -> int:
        return self.epoch_size

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """One (tile uint8 (S, S, 3), class index) before augmentation."""
        real_groups, fake_groups = self.real_by_source, self.fake_by_source
        if self.bins:
            real_groups, fake_groups = self.bins[int(rng.integers(len(self.bins)))]
            if not fake_groups and not self.synth:  # a bin of reals only: no fake to pair
                real_groups, fake_groups = self.real_by_source, self.fake_by_source
        fake = rng.random() < 0.5
        sim = fake and bool(self.synth) and (not fake_groups or rng.random() < self.synth_prob)
        groups = real_groups if (not fake or sim) else fake_groups
        rows = groups[int(rng.integers(len(groups)))]
        r = int(rows[int(rng.integers(len(rows)))])
        tile = self.pools[r, int(rng.integers(self.pools.shape[1]))]
        if sim:  # (`sim`, not `simulate`: that is the module function)
            return simulate(self.synth[int(rng.integers(len(self.synth)))], tile, rng), (
                self.sim_label
            )
        return tile, self.targets[r]

    def __getitem__(self, i: int):
        from unmask.training.augment import augment_crop

        # torch's RNG is seeded by seed_everything (and per worker), so runs repeat.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        tile, y = self.draw(rng)
        if self.noise_prob > 0 and rng.random() < self.noise_prob:
            sd = rng.uniform(0.0, self.noise_std)
            tile = np.clip(np.rint(tile + rng.normal(0.0, sd, tile.shape)), 0, 255).astype(np.uint8)
        tile, _ = augment_crop(tile, self.augment, rng)
        x = torch.from_numpy(normalize_tiles(tile[None])[0])
        return x, torch.zeros(468, 3), y


def _group(labels: list[str], sources: list[str], real: bool) -> list[np.ndarray]:
    by: dict[str, list[int]] = {}
    for i, (lab, src) in enumerate(zip(labels, sources, strict=True)):
        if (lab == "real") == real:
            by.setdefault(src, []).append(i)
    return [np.asarray(v) for _, v in sorted(by.items())]


def simulate(kind: str, tile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One simulated fake of `kind` (see SYNTH_KINDS) from a real uint8 tile."""
    from unmask.synth.upsample_sim import simulate_trace, simulate_upsampling

    return simulate_trace(tile, rng) if kind == "upsample_trace" else simulate_upsampling(tile, rng)


class TileFaceDataset(Dataset):
    """Fixed per-face tile stacks (count, 3, S, S) for validation / prediction."""

    def __init__(self, tiles: np.ndarray, targets: list[int]) -> None:
        self.tiles = tiles
        self.targets = list(targets)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return (
            torch.from_numpy(normalize_tiles(self.tiles[i])),
            torch.zeros(468, 3),
            self.targets[i],
        )


def face_tiles_for_eval(
    tiles: np.ndarray, quality: int, simulate_seed: int | None = None, kind: str = "upsample"
) -> np.ndarray:
    """One face's (K, S, S, 3) tiles re-encoded at `quality` (0: as they are); with
    `simulate_seed`, first made a simulated fake of `kind` (one recipe for the face)."""
    out = tiles
    if simulate_seed is not None:
        from unmask.synth.upsample_sim import apply_recipe, apply_trace, random_recipe

        rng = np.random.default_rng(simulate_seed)
        recipe = random_recipe(rng)
        if kind == "upsample_trace":
            gain = float(rng.uniform(0.5, 1.5))
            out = np.stack([apply_trace(t, recipe, gain) for t in out])
        else:
            out = np.stack([apply_recipe(t, recipe) for t in out])
    if quality > 0:
        out = np.stack([jpeg_reencode(t, quality) for t in out])
    return out


class TileDataModule(L.LightningDataModule):
    """Train/val tile loaders from the manifest; same interface as `FaceDataModule`
    (`setup`, `dataset`, `plain_loader`, `train_df`, `val_df`) for the CNN engine."""

    def __init__(self, cfg: TrainConfig, progress: bool = True, val_only: bool = False) -> None:
        super().__init__()
        check_config(cfg)
        self.cfg = cfg
        self.progress = progress
        self.val_only = val_only  # export/eval only: no training pools are cut
        self.train_df: Any = None
        self.val_df: Any = None
        self._train: TileTrainDataset | None = None
        self._val: TileFaceDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_df is not None:
            return
        from unmask.training.datamodule import load_split

        cfg, t = self.cfg, self.cfg.data.tiles
        frames = {}
        for split in ("train", "val"):
            df = load_split(cfg, split)
            labels = getattr(cfg.data, "labels", ())
            if labels:  # (load_split may filter already; filtering twice is harmless)
                df = df[df["label"].isin(labels)].reset_index(drop=True)
            if "frame" in df.columns:  # video frames: seeking per row is far too slow here
                df = df[df["frame"].astype(int) < 0].reset_index(drop=True)
            df = with_originals(df)
            cap = t.max_per_source if split == "train" else t.max_val_per_source
            frames[split] = cap_per_source(df, cap, cfg.seed)
            if not len(frames[split]) or "real" not in set(frames[split]["label"]):
                raise UnmaskError(f"the {split} split has no real rows after data filters")
        if self.val_only:
            self.train_df = frames["train"]
        else:
            self._setup_train(frames["train"])
        self._setup_val(frames["val"])

    def _setup_train(self, df) -> None:
        cfg, t = self.cfg, self.cfg.data.tiles
        pool_spec = TileSpec(size=t.size, count=t.pool, region=t.region, align=t.align)
        pools, kept, sides, smaller = _cut_all(
            df, pool_spec, cfg.seed, "train tiles", self.progress, t.down_reals
        )
        self.train_df = df.iloc[kept].reset_index(drop=True)
        labels, sources = list(self.train_df["label"]), list(self.train_df["source"])
        for more, kept_r, more_sides in smaller:  # the same reals, smaller (see the config)
            pools = np.concatenate([pools, more])
            labels += ["real"] * len(kept_r)
            sources += list(df["source"].iloc[kept_r])
            sides += more_sides
        self._train = TileTrainDataset(
            pools,
            labels,
            sources,
            cfg.augment,
            cfg.data.num_classes,
            t.epoch_size,
            synth=cfg.data.synth,
            synth_prob=cfg.data.synth_prob,
            noise_prob=t.noise_prob,
            noise_std=t.noise_std,
            sides=sides,
            scale_edges=t.scale_edges if t.balance == "scale" else None,
        )

    def _setup_val(self, df) -> None:
        cfg, t = self.cfg, self.cfg.data.tiles
        vtiles, kept, _, _ = _cut_all(df, tile_spec(cfg), None, "val tiles", self.progress)
        val_df = df.iloc[kept].reset_index(drop=True)
        stacks, targets, rows = [], [], []
        n = cfg.data.num_classes
        for i, row in enumerate(val_df.to_dict("records")):
            stacks.append(face_tiles_for_eval(vtiles[i], t.val_jpeg))
            targets.append(label_to_index(row["label"], n))
            rows.append(row)
            if cfg.data.synth and row["label"] == "real":
                rng = np.random.default_rng([cfg.seed, 7, i])
                if rng.random() < cfg.data.synth_prob:
                    seed = int(rng.integers(0, 2**31 - 1))
                    kind = cfg.data.synth[int(rng.integers(len(cfg.data.synth)))]
                    stacks.append(face_tiles_for_eval(vtiles[i], t.val_jpeg, seed, kind))
                    targets.append(label_to_index("gan", n))
                    rows.append({**row, "label": "gan", "source": f"{row['source']}+upsample"})
        import pandas as pd

        self.val_df = pd.DataFrame(rows)
        if len(set(targets)) < 2:
            raise UnmaskError("the val split needs both real and fake faces")
        self._val = TileFaceDataset(np.stack(stacks), targets)

    def dataset(self, split: str, augment: bool | None = None):
        self.setup()
        return self._train if split == "train" else self._val

    def _loader(self, ds, shuffle: bool, batch_size: int) -> DataLoader:
        w = self.cfg.data.num_workers
        return DataLoader(
            ds, batch_size=batch_size, shuffle=shuffle, num_workers=w, persistent_workers=w > 0
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("train"), True, self.cfg.data.batch_size)

    def val_dataloader(self) -> DataLoader:
        faces = max(1, 256 // self.cfg.data.tiles.count)  # inference only: bigger batches
        return self._loader(self.dataset("val"), False, faces)

    def plain_loader(self, split: str) -> DataLoader:
        if split == "train":  # only used for input statistics: un-augmented pool tiles
            raise UnmaskError("tile training has no plain train loader")
        return self.val_dataloader()
