"""`unmask synth` end to end: manifest in, synthetic crops + manifest out.

    run_blend(manifest, out_dir, pair=False, ...)    -> summary dict
    run_upsample(manifest, out_dir, upsampler=...)   -> summary dict
    run_gan(manifest, out_dir, ...)                  -> summary dict

Bookkeeping (no leakage): every synthetic row made from a parent crop takes the parent's
`split` and `group`; a pair blend takes the target's, and its donor is drawn from the same
split (another group). GAN samples have no single parent: the WGAN-GP is trained on the real
rows of one split (`split`, default `train`) and its samples are put in that split, each in its
own group. Train a GAN per split (`split="val"`, `"test"`) for synthetic val/test sets.

Randomness comes from `numpy.random.default_rng([seed, row, copy])` per synthetic image (and
torch seeded with `seed`), so a run is reproducible and independent of processing order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.synth import common as C

SHEET_ROWS = 8


def _select(reals, limit: int, seed: int):
    if limit and len(reals) > limit:
        reals = reals.sample(n=limit, random_state=seed).sort_index()
    return reals


def _rel_to_out(abs_path: str, out: Path) -> str:
    import os

    return os.path.relpath(abs_path, out).replace(os.sep, "/") if abs_path else ""


def _input_rows(df, root: Path, out: Path, keep: str) -> list[dict[str, Any]]:
    if keep not in ("all", "real", "none"):
        raise UnmaskError(f"--keep must be all, real or none, got {keep!r}")
    if keep == "none":
        return []
    sel = df if keep == "all" else df[df["label"] == "real"]
    return C.rebase_rows(sel, root, out)


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

    t0 = time.perf_counter()
    out = Path(out_dir)
    df, root, _spec = C.read_input(manifest, out)
    reals = _select(C.real_rows(df, splits, manifest), limit, seed)
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
    skipped: list[tuple[str, str]] = []
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
                C.synthetic_row(
                    rec.to_dict(),
                    path=f"{name}.png",
                    label="edited",
                    source=f"synth_{kind}",
                    method=f"synth:{kind}",
                    landmarks=_rel_to_out(rec.get("abs_landmarks", ""), out),
                    parent=";".join(_rel_to_out(p, out) for p in parents),
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
    if not rows:
        reasons = _reasons(skipped)
        raise UnmaskError(f"no {kind} fakes made: all {len(reals)} real rows skipped ({reasons})")
    sheets = []
    if sheet:
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
        "skipped_reasons": _reason_counts(skipped),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    mpath = C.write_output(out, _input_rows(df, root, out, keep), rows, root, info, skipped)
    return dict(info, manifest_out=str(mpath), made=len(rows), skipped=len(skipped))


def _reason_counts(skipped: Sequence[tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, r in skipped:
        key = r.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def _reasons(skipped: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in _reason_counts(skipped).items()) or "none"


def _load_many(
    paths: Sequence[str], size: int, skipped: list[tuple[str, str]], names: Sequence[str]
):
    """Images resized to `size`, keeping only readable ones: (array (N,S,S,3), kept positions)."""
    imgs, keep, shapes = [], [], []
    for i, (p, name) in enumerate(zip(paths, names, strict=True)):
        try:
            im = C.load_rgb(p)
        except UnmaskError:
            skipped.append((name, "corrupt"))
            continue
        shapes.append(im.shape[0])
        imgs.append(C.resize(im, size))
        keep.append(i)
    arr = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)
    return arr, keep, shapes


def spectrum_sheet(real: np.ndarray, fake: np.ndarray, path: Path, title: str) -> Path:
    """Mean log-amplitude spectra (grey, high-passed) of real vs fake and their difference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def spec(x: np.ndarray) -> np.ndarray:
        g = x.astype(np.float32).mean(-1)
        g = g - g.mean(axis=(1, 2), keepdims=True)
        f = np.fft.fftshift(np.abs(np.fft.fft2(g)), axes=(1, 2))
        return np.log1p(f).mean(0)

    a, b = spec(real), spec(fake)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, im, t in zip(
        axes, (a, b, b - a), ("real", "reconstruction", "difference"), strict=True
    ):
        ax.imshow(im, cmap="magma" if t != "difference" else "coolwarm")
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


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
    t0 = time.perf_counter()
    out = Path(out_dir)
    df, root, _spec = C.read_input(manifest, out)
    reals = _select(C.real_rows(df, splits, manifest), limit, seed)
    sub = f"upsample-{upsampler}"
    skipped: list[tuple[str, str]] = []
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
                C.synthetic_row(
                    rec.to_dict(),
                    path=name,
                    label="gan",
                    source=f"synth_upsample_{upsampler}",
                    method=f"synth:upsample-{upsampler}",
                    landmarks=_rel_to_out(rec.get("abs_landmarks", ""), out),
                    parent=_rel_to_out(rec["abs_path"], out),
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
    if not rows:
        raise UnmaskError(
            f"no reconstructions made: all {len(reals)} real rows skipped ({_reasons(skipped)})"
        )
    sheets = []
    if sheet:
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
        skipped_reasons=_reason_counts(skipped),
        seconds=round(time.perf_counter() - t0, 2),
    )
    mpath = C.write_output(out, _input_rows(df, root, out, keep), rows, root, info, skipped)
    return dict(info, manifest_out=str(mpath), made=len(rows), skipped=len(skipped))


def run_gan(
    manifest: str | Path,
    out_dir: str | Path,
    n: int = 500,
    size: int = 64,
    steps: int = 300,
    batch_size: int = 32,
    n_critic: int = 5,
    lr: float = 1e-4,
    gp_weight: float = 10.0,
    z_dim: int = 128,
    width: int = 32,
    split: str = "train",
    generator: str | Path | None = None,
    resume: str | Path | None = None,
    ckpt_every: int = 100,
    sample_every: int = 50,
    out_size: int = 0,
    seed: int = 0,
    keep: str = "all",
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Train a WGAN-GP on the real rows of `split` (or load `generator`) and add `n` samples
    (label `gan`, split `split`, one group each)."""
    from tqdm import tqdm

    from unmask.synth.nets import load_nets, save_nets
    from unmask.synth.train import sample, train_wgan_gp

    if n < 1:
        raise UnmaskError(f"-n must be >= 1, got {n}")
    t0 = time.perf_counter()
    out = Path(out_dir)
    df, root, spec = C.read_input(manifest, out)
    sub = "gan"
    info: dict[str, Any] = {
        "method": "gan",
        "manifest": str(manifest),
        "seed": seed,
        "split": split,
    }
    skipped: list[tuple[str, str]] = []
    if generator:
        nets, meta = load_nets(generator)
        if "generator" not in nets:
            raise UnmaskError(f"{generator}: holds no generator")
        g = nets["generator"]
        gen_path = Path(generator)
        info.update(generator=str(generator), train_s=0.0, trained_on=meta.get("train_split", "?"))
    else:
        train_df = C.real_rows(df, [split], manifest)
        try:
            from unmask.synth.nets import _check_size

            _check_size(size, 16)
        except ValueError as exc:
            raise UnmaskError(f"--size: {exc}") from None
        imgs, _, _ = _load_many(list(train_df["abs_path"]), size, skipped, list(train_df["path"]))
        if len(imgs) < 2:
            raise UnmaskError(
                f"{manifest}: need at least 2 readable real crops in split {split}, got {len(imgs)}"
            )
        g, d, hist = train_wgan_gp(
            imgs,
            size,
            steps,
            batch_size,
            n_critic,
            lr,
            gp_weight,
            z_dim,
            width,
            seed,
            device,
            out / sub / "training",
            ckpt_every,
            sample_every,
            resume,
            progress,
        )
        gen_path = save_nets(
            out / sub / "generator.safetensors",
            {"generator": g},
            {"train_split": split, "step": hist["step"], "seed": seed},
        )
        _loss_plot(hist, out / sub / "training" / "losses.png")
        info.update(
            train_s=round(hist["train_s"], 2),
            train_images=len(imgs),
            step=hist["step"],
            grids=hist["grids"],
            checkpoints=hist["checkpoints"],
            final_w_dist=round(hist["w_dist"][-1], 4) if hist["w_dist"] else None,
        )
    t2 = time.perf_counter()
    samples = sample(g, n, seed=seed, device=device)
    osz = out_size or C.crop_size_of(spec, g.config["size"])
    rows = []
    rel_gen = _rel_to_out(str(gen_path.resolve()), out.resolve())
    for i, im in enumerate(tqdm(samples, desc="synth gan", disable=not progress, unit="img")):
        name = f"{sub}/{split}/{i:06d}.png"
        C.save_png(out / name, C.resize(im, osz))
        rows.append(
            C.synthetic_row(
                None,
                path=name,
                label="gan",
                source="synth_gan",
                method="synth:gan-wgan-gp",
                group=f"synth_gan:{split}:{seed}:{i:06d}",
                split=split,
                landmarks="",
                parent="",
                synth_params={
                    "generator": rel_gen,
                    "trained_on_split": info.get("trained_on", split),
                    "size": g.config["size"],
                    "out_size": osz,
                    "seed": seed,
                    "index": i,
                },
            )
        )
    info["sample_s"] = round(time.perf_counter() - t2, 2)
    sheet = out / "sheet-gan.png"
    C.save_png(sheet, C.image_grid([C.resize(s, 64) for s in samples[:64]], ncol=8))
    info.update(
        n=n,
        size=g.config["size"],
        steps=steps,
        out_size=osz,
        keep=keep,
        generator_out=str(gen_path),
        sheets=[str(sheet)],
        seconds=round(time.perf_counter() - t0, 2),
    )
    mpath = C.write_output(out, _input_rows(df, root, out, keep), rows, root, info, skipped)
    return dict(info, manifest_out=str(mpath), made=len(rows), skipped=len(skipped))


def _loss_plot(hist: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not hist["w_dist"]:
        return
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].plot(hist["w_dist"])
    ax[0].set_title("critic Wasserstein estimate", fontsize=9)
    ax[1].plot(hist["gp"])
    ax[1].set_title("gradient penalty", fontsize=9)
    for a in ax:
        a.set_xlabel("generator step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def summary_line(info: dict[str, Any]) -> str:
    extra = {k: info[k] for k in ("train_s", "synth_s", "sample_s", "seconds") if k in info}
    return (
        f"{info['method']}: {info['made']} synthetic rows, {info['skipped']} skipped "
        f"-> {info['manifest_out']} {json.dumps(extra)}"
    )
