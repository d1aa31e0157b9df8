"""Checks on manifest rows before they are scored: no silent wrong answer.

`check_rows` drops rows whose label is not one of real/gan/edited (as `prepare` rejects
them), rows listing a crop already listed and rows whose crop is not a readable image,
saying so on stderr, and refuses crops that are missing from disk in one line, before any
work starts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from unmask.errors import UnmaskError
from unmask.labels import DATA_LABELS


def _readable_image(path: str) -> bool:
    """Whether `path` opens as an image and its data checks out (PIL's verify: headers and
    PNG checksums, without decoding every pixel)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:  # any decoder complaint means: not a crop we can score
        return False


def check_rows(
    df: Any,
    what: str = "manifest",
    warn: Callable[[str], None] | None = None,
    labelled: bool = True,
) -> Any:
    """`df` (from `read_manifest`: `path`, `label`, `abs_path`) without unknown labels and
    duplicated crops, each dropped with a warning. Raises `UnmaskError` when a crop file is
    missing or nothing is left."""
    say = warn or (lambda msg: print(msg, file=sys.stderr))
    n0 = len(df)
    if labelled and "label" in df.columns:
        bad = ~df["label"].isin(DATA_LABELS)
        if bad.any():
            shown = ", ".join(repr(v) for v in sorted(set(df.loc[bad, "label"]))[:5])
            say(
                f"warning: {what}: skipped {int(bad.sum())} row(s) with unknown label "
                f"{shown} (expected {', '.join(DATA_LABELS)})"
            )
            df = df[~bad]
    key = "abs_path" if "abs_path" in df.columns else "path"
    dup = df.duplicated(subset=[key], keep="first")
    if dup.any():
        first = df.loc[dup, "path"].iloc[0]
        say(
            f"warning: {what}: {int(dup.sum())} duplicated row(s) (the same crop listed more "
            f"than once, e.g. {first}): each crop is counted once"
        )
        df = df[~dup]
    if "abs_path" in df.columns:
        from pathlib import Path

        missing = [p for p in df["abs_path"] if not Path(p).is_file()]
        if missing:
            raise UnmaskError(
                f"{what}: {len(missing)} crop file(s) listed but missing, e.g. {missing[0]} "
                "(re-run `unmask prepare`, or remove those rows)"
            )
        unreadable = [not _readable_image(p) for p in df["abs_path"]]
        if any(unreadable):
            first = df.loc[unreadable, "path"].iloc[0]
            say(
                f"warning: {what}: skipped {sum(unreadable)} row(s) whose crop is not a "
                f"readable image, e.g. {first}"
            )
            df = df[[not u for u in unreadable]]
    if len(df) == 0:
        raise UnmaskError(f"{what}: no usable rows left of {n0}")
    return df.reset_index(drop=True)
