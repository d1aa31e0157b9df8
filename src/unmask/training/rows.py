"""The one row selection for training (classical and CNN draw the same rows).

    rows = select_rows(read_manifest(manifest, split="train"), cfg.data, cfg.seed)

Order: `data.sources`, `data.exclude_sources`, then `data.max_per_class` (per label, a
seeded permutation of the rows sorted by path keeps at most that many), then sorted by path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unmask.training.config import DataConfig


def select_rows(df: Any, data: DataConfig, seed: int) -> Any:
    if data.sources:
        df = df[df["source"].isin(data.sources)]
    if data.exclude_sources:
        df = df[~df["source"].isin(data.exclude_sources)]
    if data.labels:  # e.g. (real,) for a blend detector trained on reals and self-blends
        df = df[df["label"].isin(data.labels)]
    df = df.sort_values("path", kind="stable").reset_index(drop=True)
    if data.max_per_class > 0 and len(df):
        keep: list[int] = []
        for _, idx in sorted(df.groupby("label").groups.items()):
            idx = np.asarray(sorted(idx))
            rng = np.random.default_rng(seed)
            keep.extend(idx[rng.permutation(len(idx))[: data.max_per_class]].tolist())
        df = df.loc[sorted(keep)].reset_index(drop=True)
    return df
