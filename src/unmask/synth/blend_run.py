"""`unmask synth blend`: self-blended images (or landmark-warp face swaps) of the real rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.synth import common as C
from unmask.synth.skeleton import SHEET_ROWS, SynthRun


def run_blend(
    manifest: str | Path,
    out_dir: str | Path,
    pair: bool = False,
    per_real: int = 1,
    splits: Sequence[str] | None = None,
    limit: int = 0,
    seed: int = 0,
    keep: str = "all",
    sheet: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Self-blended images (or, with `pair`, landmark-warp face swaps) of the real rows."""
    from tqdm import tqdm

    from unmask.synth.blend import pair_blend, self_blend

    run = SynthRun.start(manifest, out_dir, keep)
    out, df, skipped = run.out, run.df, run.skipped
    reals = run.reals(splits, limit, seed)
    kind = "pair" if pair else "blend"
    sub = f"blend-{kind}" if pair else "blend"
    if per_real < 1:
        raise UnmaskError(f"--per-real must be >= 1, got {per_real}")

    lm_cache: dict[int, np.ndarray | None] = {}

    def landmarks(idx: int) -> np.ndarray | None:
        if idx not in lm_cache:
            p = df.at[idx, "abs_landmarks"] if "abs_landmarks" in df.columns else ""
            try:
                lm_cache[idx] = C.load_landmarks(p) if p else None
            except UnmaskError:
                lm_cache[idx] = None
        return lm_cache[idx]

    donors: dict[str, list[int]] = {}
    if pair:
        all_reals = C.real_rows(df, splits, manifest)
        for sp, part in all_reals.groupby("split"):
            donors[str(sp)] = [int(i) for i in part.index if landmarks(int(i)) is not None]

    rows: list[dict[str, Any]] = []
    sheet_cols: list[list[np.ndarray]] = [[], [], [], []]
    for idx in tqdm(reals.index, desc=f"synth {kind}", disable=not progress, unit="face"):
        rec = df.loc[idx]
        path = rec["path"]
        lm = landmarks(int(idx))
        if lm is None:
            skipped.append((path, "no_landmarks"))
            continue
        try:
            img = C.load_rgb(rec["abs_path"])
        except UnmaskError:
            skipped.append((path, "corrupt"))
            continue
        made = 0
        for k in range(per_real):
            rng = C.row_rng(seed, int(idx), k)
            parents = [rec["abs_path"]]
            try:
                if pair:
                    pool = [
                        j
                        for j in donors.get(str(rec["split"]), [])
                        if df.at[j, "group"] != rec["group"]
                    ]
                    if not pool:
                        skipped.append((path, "no_donor"))
                        break
                    j = int(pool[int(rng.integers(len(pool)))])
                    donor = C.load_rgb(df.at[j, "abs_path"])
                    donor = (
                        C.resize(donor, img.shape[0]) if donor.shape[:2] != img.shape[:2] else donor
                    )
                    fake, mask, params = pair_blend(
                        img, lm, donor, landmarks(j), rng, return_params=True
                    )
                    parents.append(df.at[j, "abs_path"])
                    params["donor_group"] = str(df.at[j, "group"])
                else:
                    fake, mask, params = self_blend(img, lm, rng, return_params=True)
                    donor = None
            except (ValueError, UnmaskError) as exc:
                skipped.append((path, f"blend_failed: {exc}"[:200]))
                continue
            name = f"{sub}/{int(idx):06d}_{k}"
            C.save_png(out / f"{name}.png", fake)
            C.save_png(out / f"{name}_mask.png", np.round(mask * 255).astype(np.uint8))
            params.update(seed=seed, copy=k)
            rows.append(
                run.row(
                    rec.to_dict(),
                    parents,
                    path=f"{name}.png",
                    label="edited",
                    source=f"synth_{kind}",
                    method=f"synth:{kind}",
                    mask=f"{name}_mask.png",
                    synth_params=params,
                )
            )
            made += 1
            if sheet and len(sheet_cols[0]) < SHEET_ROWS:
                sheet_cols[0].append(img)
                sheet_cols[1].append(donor if donor is not None else img)
                sheet_cols[2].append(fake)
                sheet_cols[3].append(mask)
        del made
    sheets = []
    if sheet and rows:
        if pair:
            cols, titles = sheet_cols, ["target", "donor", "swap", "mask"]
        else:
            cols, titles = (
                [sheet_cols[0], sheet_cols[2], sheet_cols[3]],
                ["real", "self-blend", "mask"],
            )
        sheets.append(
            str(
                C.contact_sheet(
                    cols, titles, out / f"sheet-{sub}.png", f"unmask synth {kind} (seed {seed})"
                )
            )
        )
    info = {
        "method": kind,
        "manifest": str(manifest),
        "seed": seed,
        "per_real": per_real,
        "splits": list(splits or []),
        "limit": limit,
        "keep": keep,
        "sheets": sheets,
    }
    return run.finish(rows, info, f"no {kind} fakes made from {len(reals)} real rows")
