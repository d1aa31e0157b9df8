"""`unmask synth upsample`: reconstructions of real faces by an upsampling auto-encoder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.synth import common as C
from unmask.synth.skeleton import SHEET_ROWS, SynthRun, _load_many, load_net, spectrum_sheet


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
    from unmask.synth.nets import UPSAMPLERS

    if upsampler not in UPSAMPLERS:
        raise UnmaskError(f"--upsampler must be one of {', '.join(UPSAMPLERS)}, got {upsampler!r}")
    if size < 16 or size & (size - 1) or size % (2**depth):
        raise UnmaskError(f"--size must be a power of two >= 16 divisible by 2^depth, got {size}")
    run = SynthRun.start(manifest, out_dir, keep)
    reals = run.reals(splits, limit, seed)
    info = run.info(f"upsample-{upsampler}", seed, size=size)
    if model:
        ae, _meta = load_net(model, "autoencoder", "auto-encoder")
        upsampler = ae.config["upsampler"]
        model_path = Path(model)
        info.update(model=str(model), train_s=0.0)
    else:
        fit = dict(steps=steps, batch_size=batch_size, lr=lr, width=width, depth=depth, seed=seed)
        ae, model_path, trained = _train_autoencoder(
            run, train_split, size, upsampler, fit, device, progress
        )
        info.update(trained)
    sub = f"upsample-{upsampler}"
    params = {
        "upsampler": upsampler,
        "size": size,
        "model": run.net_ref(model_path),
        "seed": seed,
    }
    t2 = time.perf_counter()
    rows, shown = _reconstruct_rows(run, reals, ae, sub, params, out_size, device, progress)
    info["synth_s"] = round(time.perf_counter() - t2, 2)
    sheets = _upsample_sheets(run.out, shown, sub, upsampler, size) if sheet and rows else []
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


def _train_autoencoder(run, split, size, upsampler, fit, device, progress):
    """Fit the auto-encoder on the reals of `split` (`fit`: train_autoencoder's options):
    the model, where it was saved, and what synth.json records of the training."""
    from unmask.synth.nets import save_nets
    from unmask.synth.train import train_autoencoder

    t1 = time.perf_counter()
    imgs = run.training_images(split, size, record_skips=False)
    if len(imgs) == 0:
        raise UnmaskError(f"{run.manifest}: no readable real crops in split {split}")
    ae, losses = train_autoencoder(imgs, upsampler, device=device, progress=progress, **fit)
    model_path = save_nets(
        run.out / f"upsample-{upsampler}" / "autoencoder.safetensors",
        {"autoencoder": ae},
        {"train_split": split, "steps": fit["steps"], "seed": fit["seed"]},
    )
    trained = dict(
        train_s=round(time.perf_counter() - t1, 2),
        train_images=len(imgs),
        final_l1=round(losses[-1], 5) if losses else None,
    )
    return ae, model_path, trained


def _reconstruct_rows(run, reals, ae, sub, params, out_size, device, progress):
    """The auto-encoder's reconstruction of every readable real row (64 at a time), one
    `gan` row each; and up to 64 (real, reconstruction) pairs for the sheets."""
    from tqdm import tqdm

    from unmask.synth.train import reconstruct

    rows: list[dict[str, Any]] = []
    shown: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    chunk, size = 64, params["size"]
    idxs = list(reals.index)
    bar = tqdm(total=len(idxs), desc=f"synth {sub}", disable=not progress, unit="face")
    for s in range(0, len(idxs), chunk):
        part = reals.loc[idxs[s : s + chunk]]
        imgs, kept, shapes = _load_many(
            list(part["abs_path"]), size, run.skipped, list(part["path"])
        )
        recs = reconstruct(ae, imgs, device=device)
        for j, pos in enumerate(kept):
            rec = part.loc[part.index[pos]]
            osz = out_size or shapes[j]
            name = f"{sub}/{int(part.index[pos]):06d}.png"
            C.save_png(run.out / name, C.resize(recs[j], osz))
            rows.append(
                run.row(
                    rec.to_dict(),
                    [rec["abs_path"]],
                    path=name,
                    label="gan",
                    source=f"synth_upsample_{params['upsampler']}",
                    method=f"synth:upsample-{params['upsampler']}",
                    synth_params={**params, "out_size": osz},
                )
            )
            if len(shown[0]) < 64:
                shown[0].append(imgs[j])
                shown[1].append(recs[j])
        bar.update(len(part))
    bar.close()
    return rows, shown


def _upsample_sheets(out: Path, shown, sub: str, upsampler: str, size: int) -> list[str]:
    """A contact sheet (real, reconstruction, |difference| x4) and the mean spectra."""
    real, fake = shown
    diff = [
        np.clip(np.abs(a.astype(int) - b.astype(int)) * 4, 0, 255).astype(np.uint8)
        for a, b in zip(real, fake, strict=True)
    ]
    sheet = C.contact_sheet(
        [real[:SHEET_ROWS], fake[:SHEET_ROWS], diff[:SHEET_ROWS]],
        ["real", f"AE ({upsampler})", "|diff| x4"],
        out / f"sheet-{sub}.png",
        f"unmask synth upsample ({upsampler}, {size} px)",
    )
    spectra = spectrum_sheet(
        np.stack(real),
        np.stack(fake),
        out / f"spectrum-{sub}.png",
        f"mean log spectrum, {len(real)} faces, {upsampler}",
    )
    return [str(sheet), str(spectra)]
