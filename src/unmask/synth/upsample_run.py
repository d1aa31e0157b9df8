"""`unmask synth upsample`: reconstructions of real faces by an upsampling auto-encoder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.synth import common as C
from unmask.synth.skeleton import SHEET_ROWS, SynthRun, _load_many, _rel_to_out, spectrum_sheet


def run_upsample(
    manifest: str | Path,
    out_dir: str | Path,
    upsampler: str = "transposed",
    size: int = 128,
    steps: int = 400,
    batch_size: int = 16,
    lr: float = 2e-3,
    width: int = 32,
    depth: int = 3,
    train_split: str = "train",
    splits: Sequence[str] | None = None,
    model: str | Path | None = None,
    out_size: int = 0,
    limit: int = 0,
    seed: int = 0,
    keep: str = "all",
    device: str = "cpu",
    sheet: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or load) the upsampling auto-encoder on the `train_split` reals and write its
    reconstructions of the real rows (of `splits`, default all) as `gan` fakes."""
    from tqdm import tqdm

    from unmask.synth.nets import UPSAMPLERS, load_nets, save_nets
    from unmask.synth.train import reconstruct, train_autoencoder

    if upsampler not in UPSAMPLERS:
        raise UnmaskError(f"--upsampler must be one of {', '.join(UPSAMPLERS)}, got {upsampler!r}")
    if size < 16 or size & (size - 1) or size % (2**depth):
        raise UnmaskError(f"--size must be a power of two >= 16 divisible by 2^depth, got {size}")
    run = SynthRun.start(manifest, out_dir, keep)
    out, df, skipped = run.out, run.df, run.skipped
    reals = run.reals(splits, limit, seed)
    sub = f"upsample-{upsampler}"
    info: dict[str, Any] = {"method": sub, "manifest": str(manifest), "seed": seed, "size": size}

    if model:
        nets, _meta = load_nets(model)
        if "autoencoder" not in nets:
            raise UnmaskError(f"{model}: holds no auto-encoder")
        ae = nets["autoencoder"]
        upsampler = ae.config["upsampler"]
        sub = f"upsample-{upsampler}"
        model_path = Path(model)
        info.update(model=str(model), train_s=0.0)
    else:
        train_df = C.real_rows(df, [train_split], manifest)
        t1 = time.perf_counter()
        train_imgs, _, _ = _load_many(list(train_df["abs_path"]), size, [], list(train_df["path"]))
        if len(train_imgs) == 0:
            raise UnmaskError(f"{manifest}: no readable real crops in split {train_split}")
        ae, losses = train_autoencoder(
            train_imgs, upsampler, steps, batch_size, lr, width, depth, seed, device, progress
        )
        model_path = save_nets(
            out / sub / "autoencoder.safetensors",
            {"autoencoder": ae},
            {"train_split": train_split, "steps": steps, "seed": seed},
        )
        info.update(
            train_s=round(time.perf_counter() - t1, 2),
            train_images=len(train_imgs),
            final_l1=round(losses[-1], 5) if losses else None,
        )

    rows: list[dict[str, Any]] = []
    sheet_real: list[np.ndarray] = []
    sheet_fake: list[np.ndarray] = []
    t2 = time.perf_counter()
    chunk = 64
    idxs = list(reals.index)
    bar = tqdm(total=len(idxs), desc=f"synth {sub}", disable=not progress, unit="face")
    for s in range(0, len(idxs), chunk):
        part = reals.loc[idxs[s : s + chunk]]
        imgs, kept, shapes = _load_many(list(part["abs_path"]), size, skipped, list(part["path"]))
        recs = reconstruct(ae, imgs, device=device)
        for j, pos in enumerate(kept):
            idx = part.index[pos]
            rec = part.loc[idx]
            osz = out_size or shapes[j]
            fake = C.resize(recs[j], osz)
            name = f"{sub}/{int(idx):06d}.png"
            C.save_png(out / name, fake)
            rows.append(
                run.row(
                    rec.to_dict(),
                    [rec["abs_path"]],
                    path=name,
                    label="gan",
                    source=f"synth_upsample_{upsampler}",
                    method=f"synth:upsample-{upsampler}",
                    synth_params={
                        "upsampler": upsampler,
                        "size": size,
                        "out_size": osz,
                        "model": _rel_to_out(str(model_path.resolve()), out.resolve()),
                        "seed": seed,
                    },
                )
            )
            if sheet and len(sheet_real) < 64:
                sheet_real.append(imgs[j])
                sheet_fake.append(recs[j])
        bar.update(len(part))
    bar.close()
    info["synth_s"] = round(time.perf_counter() - t2, 2)
    sheets = []
    if sheet and rows:
        diff = [
            np.clip(np.abs(a.astype(int) - b.astype(int)) * 4, 0, 255).astype(np.uint8)
            for a, b in zip(sheet_real, sheet_fake, strict=True)
        ]
        sheets.append(
            str(
                C.contact_sheet(
                    [sheet_real[:SHEET_ROWS], sheet_fake[:SHEET_ROWS], diff[:SHEET_ROWS]],
                    ["real", f"AE ({upsampler})", "|diff| x4"],
                    out / f"sheet-{sub}.png",
                    f"unmask synth upsample ({upsampler}, {size} px)",
                )
            )
        )
        sheets.append(
            str(
                spectrum_sheet(
                    np.stack(sheet_real),
                    np.stack(sheet_fake),
                    out / f"spectrum-{sub}.png",
                    f"mean log spectrum, {len(sheet_real)} faces, {upsampler}",
                )
            )
        )
    info.update(
        upsampler=upsampler,
        steps=steps,
        train_split=train_split,
        splits=list(splits or []),
        limit=limit,
        keep=keep,
        out_size=out_size,
        model_out=str(model_path),
        sheets=sheets,
    )
    return run.finish(rows, info, f"no reconstructions made from {len(reals)} real rows")
