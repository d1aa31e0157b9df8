"""`unmask synth gan`: samples of a WGAN-GP trained on the real rows of one split."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError
from unmask.synth import common as C
from unmask.synth.skeleton import SynthRun, load_net


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
    from unmask.synth.train import sample

    if n < 1:
        raise UnmaskError(f"-n must be >= 1, got {n}")
    run = SynthRun.start(manifest, out_dir, keep)
    info = run.info("gan", seed, split=split)
    if generator:
        g, meta = load_net(generator, "generator", "generator")
        gen_path = Path(generator)
        info.update(generator=str(generator), train_s=0.0, trained_on=meta.get("train_split", "?"))
    else:
        wgan = dict(
            size=size,
            steps=steps,
            batch_size=batch_size,
            n_critic=n_critic,
            lr=lr,
            gp_weight=gp_weight,
            z_dim=z_dim,
            width=width,
            seed=seed,
            device=device,
            ckpt_every=ckpt_every,
            sample_every=sample_every,
            resume=resume,
            progress=progress,
        )
        g, gen_path, trained = _train_generator(run, split, wgan)
        info.update(trained)
    t2 = time.perf_counter()
    samples = sample(g, n, seed=seed, device=device)
    osz = out_size or C.crop_size_of(run.spec, g.config["size"])
    params = {
        "generator": run.net_ref(gen_path),
        "trained_on_split": info.get("trained_on", split),
        "size": g.config["size"],
        "out_size": osz,
        "seed": seed,
    }
    rows = _sample_rows(run, samples, split, params, progress)
    info["sample_s"] = round(time.perf_counter() - t2, 2)
    sheet = run.out / "sheet-gan.png"
    C.save_png(sheet, C.image_grid([C.resize(s, 64) for s in samples[:64]], ncol=8))
    info.update(
        n=n,
        size=g.config["size"],
        steps=steps,
        out_size=osz,
        keep=keep,
        generator_out=str(gen_path),
        sheets=[str(sheet)],
    )
    return run.finish(rows, info, "no GAN samples made")


def _train_generator(run: SynthRun, split: str, wgan: dict[str, Any]):
    """Fit the WGAN-GP on the reals of `split` (`wgan`: train_wgan_gp's options): the
    generator, where it was saved, and what synth.json records of the training."""
    from unmask.synth.nets import _check_size, save_nets
    from unmask.synth.train import train_wgan_gp

    size, seed = wgan["size"], wgan["seed"]
    try:
        _check_size(size, 16)
    except ValueError as exc:
        raise UnmaskError(f"--size: {exc}") from None
    imgs = run.training_images(split, size)
    if len(imgs) < 2:
        raise UnmaskError(
            f"{run.manifest}: need at least 2 readable real crops in split {split}, got {len(imgs)}"
        )
    g, _, hist = train_wgan_gp(imgs, out_dir=run.out / "gan" / "training", **wgan)
    gen_path = save_nets(
        run.out / "gan" / "generator.safetensors",
        {"generator": g},
        {"train_split": split, "step": hist["step"], "seed": seed},
    )
    _loss_plot(hist, run.out / "gan" / "training" / "losses.png")
    trained = dict(
        train_s=round(hist["train_s"], 2),
        train_images=len(imgs),
        step=hist["step"],
        grids=hist["grids"],
        checkpoints=hist["checkpoints"],
        final_w_dist=round(hist["w_dist"][-1], 4) if hist["w_dist"] else None,
    )
    return g, gen_path, trained


def _sample_rows(run: SynthRun, samples, split: str, params: dict[str, Any], progress: bool):
    """One `gan` row per sample (its own group), saved at params["out_size"] px."""
    from tqdm import tqdm

    rows = []
    seed = params["seed"]
    for i, im in enumerate(tqdm(samples, desc="synth gan", disable=not progress, unit="img")):
        name = f"gan/{split}/{i:06d}.png"
        C.save_png(run.out / name, C.resize(im, params["out_size"]))
        rows.append(
            run.row(
                None,
                path=name,
                label="gan",
                source="synth_gan",
                method="synth:gan-wgan-gp",
                group=f"synth_gan:{split}:{seed}:{i:06d}",
                split=split,
                landmarks="",
                parent="",
                synth_params={**params, "index": i},
            )
        )
    return rows


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
