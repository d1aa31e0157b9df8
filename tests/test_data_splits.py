"""Grouped, stratified, seeded splits."""

from __future__ import annotations

import pandas as pd
import pytest

from unmask.data.splits import assign_splits, parse_fractions, split_groups


def _rows():
    rows = []
    for source, n_groups, per in (("a", 40, 1), ("b", 9, 3), ("c", 2, 16), ("d", 1, 1)):
        for label in ("real", "gan"):
            for g in range(n_groups):
                for k in range(per):
                    rows.append(
                        {"label": label, "source": source, "group": f"{source}{label}{g}", "k": k}
                    )
    # a group spanning two labels (a video and its manipulation)
    rows += [{"label": "real", "source": "v", "group": "v1"}] * 4
    rows += [{"label": "edited", "source": "v", "group": "v1"}] * 4
    return rows


def test_no_group_crosses_splits_and_reproducible():
    rows = _rows()
    a = assign_splits(rows, (0.7, 0.15, 0.15), seed=3)
    b = assign_splits(rows, (0.7, 0.15, 0.15), seed=3)
    assert [r["split"] for r in a] == [r["split"] for r in b]
    by_group = {}
    for r in a:
        by_group.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_group.values())
    c = assign_splits(rows, (0.7, 0.15, 0.15), seed=4)
    assert [r["split"] for r in a] != [r["split"] for r in c]
    assert "split" not in rows[0]  # inputs untouched


def test_stratification_fractions():
    out = assign_splits(_rows(), (0.7, 0.15, 0.15), seed=0)
    df = pd.DataFrame(out)
    a = df[(df.source == "a") & (df.label == "real")].split.value_counts()
    assert a["train"] == 28 and a["val"] == 6 and a["test"] == 6
    for label in ("real", "gan"):  # 9 groups of 3: every split present
        b = df[(df.source == "b") & (df.label == label)].split.value_counts()
        assert set(b.index) == {"train", "val", "test"}
        c = df[(df.source == "c") & (df.label == label)].split  # 2 groups: train + test
        assert set(c) == {"train", "test"}
    assert set(df[df.source == "d"].split) == {"train"}


def test_dataframe_input_and_split_groups():
    df = pd.DataFrame(_rows())
    out = assign_splits(df, [0.8, 0.1, 0.1], seed=1)
    assert "split" in out.columns and "split" not in df.columns
    mapping = split_groups(df.to_dict("records"), (0.8, 0.1, 0.1), 1)
    assert list(out.split) == [mapping[g] for g in df.group]
    # adding another source does not reshuffle the existing ones
    more = pd.concat([df, pd.DataFrame([{"label": "gan", "source": "zz", "group": "z"}])])
    mapping2 = split_groups(more.to_dict("records"), (0.8, 0.1, 0.1), 1)
    assert all(mapping2[g] == s for g, s in mapping.items())


def test_zero_fraction_and_parse():
    out = assign_splits(_rows(), (0.8, 0.2, 0.0), seed=0)
    assert {r["split"] for r in out} == {"train", "val"}
    assert parse_fractions("0.7,0.15,0.15") == pytest.approx((0.7, 0.15, 0.15))
    assert parse_fractions("70,15,15") == pytest.approx((0.7, 0.15, 0.15))
    for bad in ("0.5,0.5", "a,b,c", "0.7,0.2,0.2", "-0.1,0.6,0.5"):
        with pytest.raises(ValueError):
            parse_fractions(bad)
