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

    run = SynthRun.start(manifest, out_dir, keep)
    reals = run.reals(splits, limit, seed)
    kind = "pair" if pair else "blend"
    sub = f"blend-{kind}" if pair else "blend"
    if per_real < 1:
        raise UnmaskError(f"--per-real must be >= 1, got {per_real}")
    landmarks = _Landmarks(run.df)
    donors = _donors(run, splits, landmarks) if pair else None
    blender = _Blender(run.df, landmarks, donors, seed)
    rows: list[dict[str, Any]] = []
    sheet_cols: list[list[np.ndarray]] = [[], [], [], []]
    for idx in tqdm(reals.index, desc=f"synth {kind}", disable=not progress, unit="face"):
        rec = run.df.loc[idx]
        lm = landmarks(int(idx))
        if lm is None:
            run.skipped.append((rec["path"], "no_landmarks"))
            continue
        try:
            img = C.load_rgb(rec["abs_path"])
        except UnmaskError:
            run.skipped.append((rec["path"], "corrupt"))
            continue
        for k in range(per_real):
            made = blender.fake(rec, int(idx), k, img, lm)
            if isinstance(made, str):  # a skip reason
                run.skipped.append((rec["path"], made))
                if made == "no_donor":
                    break
                continue
            fake, mask, params, donor, parents = made
            name = f"{sub}/{int(idx):06d}_{k}"
            C.save_png(run.out / f"{name}.png", fake)
            C.save_png(run.out / f"{name}_mask.png", np.round(mask * 255).astype(np.uint8))
            params.update(seed=seed, copy=k)
            rows.append(_blend_row(run, rec, parents, name, kind, params))
            if sheet and len(sheet_cols[0]) < SHEET_ROWS:
                shown = (img, img if donor is None else donor, fake, mask)
                for col, im in zip(sheet_cols, shown, strict=True):
                    col.append(im)
    sheets = _blend_sheets(run.out, sheet_cols, pair, sub, seed) if sheet and rows else []
    info = run.info(
        kind, seed, per_real=per_real, splits=list(splits or []), limit=limit, keep=keep
    )
    info["sheets"] = sheets
    return run.finish(rows, info, f"no {kind} fakes made from {len(reals)} real rows")


class _Landmarks:
    """A row's landmarks by manifest index, read once (None: missing or unusable)."""

    def __init__(self, df: Any) -> None:
        self.df = df
        self.cache: dict[int, np.ndarray | None] = {}

    def __call__(self, idx: int) -> np.ndarray | None:
        if idx not in self.cache:
            p = self.df.at[idx, "abs_landmarks"] if "abs_landmarks" in self.df.columns else ""
            try:
                self.cache[idx] = C.load_landmarks(p) if p else None
            except UnmaskError:
                self.cache[idx] = None
        return self.cache[idx]


def _donors(run: SynthRun, splits: Sequence[str] | None, landmarks: _Landmarks):
    """Split -> the real rows with landmarks there: the faces a swap may take."""
    donors: dict[str, list[int]] = {}
    for sp, part in C.real_rows(run.df, splits, run.manifest).groupby("split"):
        donors[str(sp)] = [int(i) for i in part.index if landmarks(int(i)) is not None]
    return donors


class _Blender:
    """Copy k of a real row: a self-blend, or (with donors) a swap with a face of another
    group in the same split; its row generator depends on (seed, row, k) only."""

    def __init__(self, df: Any, landmarks: _Landmarks, donors: dict | None, seed: int) -> None:
        self.df, self.landmarks, self.donors, self.seed = df, landmarks, donors, seed

    def fake(self, rec: Any, idx: int, k: int, img: np.ndarray, lm: np.ndarray):
        """(fake, mask, params, donor image or None, parent paths), or a skip reason."""
        from unmask.synth.blend import pair_blend, self_blend

        rng = C.row_rng(self.seed, idx, k)
        parents = [rec["abs_path"]]
        try:
            if self.donors is None:
                fake, mask, params = self_blend(img, lm, rng, return_params=True)
                return fake, mask, params, None, parents
            df = self.df
            pool = [
                j
                for j in self.donors.get(str(rec["split"]), [])
                if df.at[j, "group"] != rec["group"]
            ]
            if not pool:
                return "no_donor"
            j = int(pool[int(rng.integers(len(pool)))])
            donor = C.load_rgb(df.at[j, "abs_path"])
            donor = C.resize(donor, img.shape[0]) if donor.shape[:2] != img.shape[:2] else donor
            fake, mask, params = pair_blend(
                img, lm, donor, self.landmarks(j), rng, return_params=True
            )
            parents.append(df.at[j, "abs_path"])
            params["donor_group"] = str(df.at[j, "group"])
            return fake, mask, params, donor, parents
        except (ValueError, UnmaskError) as exc:
            return f"blend_failed: {exc}"[:200]


def _blend_row(run: SynthRun, rec: Any, parents: list[str], name: str, kind: str, params):
    return run.row(
        rec.to_dict(),
        parents,
        path=f"{name}.png",
        label="edited",
        source=f"synth_{kind}",
        method=f"synth:{kind}",
        mask=f"{name}_mask.png",
        synth_params=params,
    )


def _blend_sheets(out: Path, cols: list[list[np.ndarray]], pair: bool, sub: str, seed: int):
    if pair:
        cols, titles = cols, ["target", "donor", "swap", "mask"]
    else:
        cols, titles = [cols[0], cols[2], cols[3]], ["real", "self-blend", "mask"]
    kind = "pair" if pair else "blend"
    title = f"unmask synth {kind} (seed {seed})"
    return [str(C.contact_sheet(cols, titles, out / f"sheet-{sub}.png", title))]
