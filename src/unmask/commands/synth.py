"""`unmask synth METHOD MANIFEST -o OUT_DIR`: synthesise training fakes from real faces."""

from __future__ import annotations

import argparse

HELP = "synthesise training fakes from real faces (blend, upsample, gan)"
DESCRIPTION = """\
Synthesise fakes from a manifest's real faces and write OUT_DIR/manifest.csv: the input rows
(paths rewritten relative to OUT_DIR; nothing copied) + the new rows, and prepare.json, so
`unmask train` can use OUT_DIR directly. New columns: `mask` (blend masks) and `synth_params`
(JSON). Each synthetic row keeps its parent's split and group; GAN samples go to --split.

methods:
  blend     Self-Blended Images (label edited; mask PNG beside each crop). --pair: landmark
            warp + Poisson face swap between two real faces of the same split.
  upsample  train a small conv auto-encoder on the train reals and write its reconstructions
            (label gan, method synth:upsample-<type>); --upsampler sets the fingerprint.
  gan       train a DCGAN-style WGAN-GP on the reals of --split (checkpoints as safetensors,
            sample grids as PNG) and write -n samples (label gan, split --split).

examples:
  unmask synth blend work/prepared -o work/synth-blend --seed 0
  unmask synth blend work/prepared -o work/synth-pair --pair
  unmask synth upsample work/prepared -o work/synth-up --upsampler transposed --size 128
  unmask synth gan work/prepared -o work/synth-gan -n 1000 --steps 300 --device cuda
"""

METHODS = ("blend", "upsample", "gan")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", choices=METHODS, help="what to synthesise")
    p.add_argument("manifest", help="manifest.csv (or its folder) with real rows")
    p.add_argument("-o", "--out", required=True, help="output folder (not the input's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--keep",
        choices=("all", "real", "none"),
        default="all",
        help="input rows copied into the new manifest (default all)",
    )
    p.add_argument("--limit", type=int, default=0, help="use at most N real rows (0: all)")
    p.add_argument(
        "--splits", default="", help="comma-separated splits to synthesise from (default all)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (upsample, gan)")
    p.add_argument(
        "--out-size",
        type=int,
        default=0,
        help="side of written images; 0: the parent crop's size (gan: prepare.json crop_size)",
    )
    p.add_argument("--no-sheet", action="store_true", help="skip the PNG contact sheets")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    b = p.add_argument_group("blend")
    b.add_argument("--pair", action="store_true", help="swap faces between two real crops")
    b.add_argument("--per-real", type=int, default=1, help="fakes per real face (default 1)")

    u = p.add_argument_group("upsample")
    u.add_argument(
        "--upsampler", choices=("transposed", "nearest", "bilinear"), default="transposed"
    )
    u.add_argument(
        "--model", default=None, help="reuse a saved autoencoder.safetensors (no training)"
    )
    u.add_argument(
        "--train-split", default="train", help="split whose reals train the auto-encoder"
    )

    g = p.add_argument_group("upsample and gan training")
    g.add_argument("--size", type=int, default=None, help="net resolution (upsample 128, gan 64)")
    g.add_argument("--steps", type=int, default=None, help="training steps (upsample 400, gan 300)")
    g.add_argument("--batch-size", type=int, default=None, help="(upsample 16, gan 32)")
    g.add_argument("--lr", type=float, default=None, help="(upsample 2e-3, gan 1e-4)")
    g.add_argument("--width", type=int, default=32, help="base channel width (default 32)")

    w = p.add_argument_group("gan")
    w.add_argument("-n", type=int, default=500, help="samples to write (default 500)")
    w.add_argument(
        "--split",
        default="train",
        help="train the GAN on this split's reals and put its samples there (default train)",
    )
    w.add_argument("--n-critic", type=int, default=5)
    w.add_argument("--gp-weight", type=float, default=10.0)
    w.add_argument("--generator", default=None, help="sample from a saved generator.safetensors")
    w.add_argument("--resume", default=None, help="continue training from a ckpt-*.safetensors")
    w.add_argument("--ckpt-every", type=int, default=100)
    w.add_argument("--sample-every", type=int, default=50)


def _opt(value, default):
    return default if value is None else value


def run(args: argparse.Namespace) -> int:
    from unmask.errors import UnmaskError
    from unmask.synth import pipeline

    splits = [s.strip() for s in args.splits.split(",") if s.strip()] or None
    common = {"seed": args.seed, "keep": args.keep, "progress": not args.quiet}
    if args.limit < 0:
        raise UnmaskError(f"--limit must be >= 0, got {args.limit}")
    if args.method == "blend":
        info = pipeline.run_blend(
            args.manifest,
            args.out,
            pair=args.pair,
            per_real=args.per_real,
            splits=splits,
            limit=args.limit,
            sheet=not args.no_sheet,
            **common,
        )
    elif args.method == "upsample":
        info = pipeline.run_upsample(
            args.manifest,
            args.out,
            upsampler=args.upsampler,
            size=_opt(args.size, 128),
            steps=_opt(args.steps, 400),
            batch_size=_opt(args.batch_size, 16),
            lr=_opt(args.lr, 2e-3),
            width=args.width,
            train_split=args.train_split,
            splits=splits,
            model=args.model,
            out_size=args.out_size,
            limit=args.limit,
            device=args.device,
            sheet=not args.no_sheet,
            **common,
        )
    else:
        for name in ("steps", "size", "n", "n_critic", "batch_size"):
            v = getattr(args, name)
            if v is not None and v < 1:
                raise UnmaskError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
        info = pipeline.run_gan(
            args.manifest,
            args.out,
            n=args.n,
            size=_opt(args.size, 64),
            steps=_opt(args.steps, 300),
            batch_size=_opt(args.batch_size, 32),
            n_critic=args.n_critic,
            lr=_opt(args.lr, 1e-4),
            gp_weight=args.gp_weight,
            width=args.width,
            split=args.split,
            generator=args.generator,
            resume=args.resume,
            ckpt_every=args.ckpt_every,
            sample_every=args.sample_every,
            out_size=args.out_size,
            device=args.device,
            **common,
        )
    print(pipeline.summary_line(info))
    return 0
