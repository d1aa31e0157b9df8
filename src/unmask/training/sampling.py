"""Balanced draws of manifest rows for crop training (`data.balance`, `data.epoch_size`).

    w = balanced_row_weights(labels, sources, "scale", sides=box_sides, edges=(200, 400))
    sampler = WeightedRandomSampler(w, num_samples=epoch_size, replacement=True)

A draw picks, in order and each uniformly: a face-size bin (crop-box side in the original's
pixels, cut at `edges`; "scale" only), the class (real or fake), a source of that class in
that bin, then a row. The shared data's fakes are mostly large faces and its reals mostly
small ones: with classes balanced inside each size bin, pixels per face cannot tell them
apart (the artifact member learned "large = fake" before its tiles were drawn this way).
A bin that holds only one class is never drawn (its rows would teach size again); the
weights are a pure function of the labels, so the rule is tested on hand-made lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unmask.errors import UnmaskError

BALANCES = ("none", "source", "scale")


def size_bins(sides: Sequence[float], edges: Sequence[float]) -> np.ndarray:
    """(N,) bin index of each side: k = number of edges <= side."""
    s = np.asarray(sides, dtype=np.float64)
    if not np.isfinite(s).all():
        raise UnmaskError("scale balance needs every row's crop box (re-run unmask prepare)")
    return np.searchsorted(np.asarray(edges, dtype=np.float64), s, side="right")


def balanced_row_weights(
    labels: Sequence[str],
    sources: Sequence[str],
    balance: str,
    sides: Sequence[float] | None = None,
    edges: Sequence[float] = (),
) -> np.ndarray:
    """(N,) sampling probabilities (sum 1) of the rows under `balance`; see the module doc.
    "none": every row alike."""
    if balance not in BALANCES:
        raise UnmaskError(f"data.balance must be one of {', '.join(BALANCES)}, got {balance!r}")
    n = len(labels)
    if n == 0 or len(sources) != n:
        raise UnmaskError("balanced sampling needs one source per row and at least one row")
    if balance == "none":
        return np.full(n, 1.0 / n)
    fake = np.asarray([lab != "real" for lab in labels])
    src = np.asarray([str(s) for s in sources])
    bins = np.zeros(n, dtype=np.int64)
    if balance == "scale":
        if sides is None or len(sides) != n:
            raise UnmaskError("scale balance needs one face size per row")
        bins = size_bins(sides, edges)
    usable = [k for k in np.unique(bins) if fake[bins == k].any() and (~fake[bins == k]).any()]
    if not usable:
        raise UnmaskError("balanced sampling needs real and fake rows in one size bin at least")
    w = np.zeros(n, dtype=np.float64)
    for k in usable:
        for cls in (False, True):
            in_cell = (bins == k) & (fake == cls)
            cell_sources = np.unique(src[in_cell])
            for s in cell_sources:
                rows = in_cell & (src == s)
                w[rows] = 1.0 / (len(usable) * 2 * len(cell_sources) * rows.sum())
    return w / w.sum()
