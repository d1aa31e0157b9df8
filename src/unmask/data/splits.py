"""Train/val/test splits: stratified by (label, source), grouped by `group`, seeded.

Every row of a group gets the same split (a video's frames, all faces of one photo, a real
video and its manipulations when `--group-regex` ties them), so no group crosses splits.
A group is placed within its main stratum (the (label, source) holding most of its rows; ties
go to the alphabetically first). In each stratum the groups are shuffled with a generator
seeded from `seed` and the stratum's name (so adding a source does not reshuffle others),
then dealt to the splits so that each split's row count approaches its fraction (a stratum
with >= 3 groups gets at least one group in every split whose fraction is > 0; one with two
groups puts one in train and one in test). Same rows + same seed = same splits.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from unmask.data.manifest import SPLITS


def parse_fractions(text: str | Sequence[float]) -> tuple[float, float, float]:
    """ "0.7,0.15,0.15" (or a sequence) -> 3 non-negative fractions summing to 1."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"splits must be 3 numbers like 0.7,0.15,0.15, got {text!r}") from None
    else:
        vals = [float(v) for v in text]
    if len(vals) != 3 or any(v < 0 for v in vals) or sum(vals) <= 0:
        raise ValueError(f"splits must be 3 non-negative numbers (train,val,test), got {text!r}")
    total = sum(vals)
    if abs(total - 1.0) > 1e-6 and abs(total - 100.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1 (or 100), got {total:g}")
    return tuple(v / total for v in vals)  # type: ignore[return-value]


def _allocate(sizes: Sequence[int], fractions: Sequence[float]) -> list[int]:
    """Split index (0 train, 1 val, 2 test) for each group, in the given (shuffled) order.

    Groups are dealt, largest first (stable, so equal sizes keep the shuffled order), to the
    split whose row count is furthest below its target. A stratum with at least as many
    groups as positive fractions gets >= 1 group in each of those splits; with fewer (one or
    two groups) they go to train, then test, then val."""
    n = len(sizes)
    positive = [i for i, f in enumerate(fractions) if f > 0]
    if n < len(positive):
        order = [i for i in (0, 2, 1) if i in positive]
        return [order[k] for k in range(n)]
    total = float(sum(sizes))
    target = [total * f for f in fractions]
    assigned = [0.0] * len(fractions)
    members: list[list[int]] = [[] for _ in fractions]
    out = [0] * n
    for g in sorted(range(n), key=lambda k: -sizes[k]):
        # ties go to test, then val, then train (small splits fill first)
        s = max(positive, key=lambda i: (target[i] - assigned[i], i))
        out[g] = s
        assigned[s] += sizes[g]
        members[s].append(g)
    for s in positive:  # every positive split gets at least one group
        if not members[s]:
            donor = max(positive, key=lambda i: (len(members[i]), -i))
            g = min(members[donor], key=lambda k: (sizes[k], k))
            members[donor].remove(g)
            members[s].append(g)
            out[g] = s
    return out


def _rng(seed: int, stratum: tuple[str, str]) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{stratum[0]}|{stratum[1]}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def split_groups(
    rows: Iterable[Mapping[str, Any]],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, str]:
    """{group: split} for rows with `label`, `source`, `group` keys."""
    fractions = parse_fractions(fractions)
    per_group: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        per_group[str(r["group"])][(str(r["label"]), str(r["source"]))] += 1
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for g, c in per_group.items():
        main = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        strata[main].append(g)
    out: dict[str, str] = {}
    for stratum in sorted(strata):
        groups = sorted(strata[stratum])
        _rng(seed, stratum).shuffle(groups)
        sizes = [sum(per_group[g].values()) for g in groups]
        for g, s in zip(groups, _allocate(sizes, fractions), strict=True):
            out[g] = SPLITS[s]
    return out


def assign_splits(rows_or_df, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0):
    """Add a `split` column. Accepts a pandas DataFrame (returns a copy) or a list of dicts
    (returns new dicts), each with `label`, `source`, `group`."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(rows_or_df, pd.DataFrame):
        df = rows_or_df.copy()
        mapping = split_groups(df[["label", "source", "group"]].to_dict("records"), fractions, seed)
        df["split"] = [mapping[str(g)] for g in df["group"]]
        return df
    rows = [dict(r) for r in rows_or_df]
    mapping = split_groups(rows, fractions, seed)
    for r in rows:
        r["split"] = mapping[str(r["group"])]
    return rows
