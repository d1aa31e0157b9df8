"""Export the best checkpoint of an artifact run that was stopped before the engine
exported it (e.g. a run cut short at a deadline): the same `export_model` as `unmask train`,
threshold and metrics on the run's own val split.

    python experiments/artifact_export.py work/artifact/loso-sdfd-npr [--ckpt best|last]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="the run's output folder (holds checkpoints/)")
    ap.add_argument("--ckpt", default="best", choices=["best", "last"])
    ap.add_argument("--out", default="", help="saved-model folder (default: the run folder)")
    args = ap.parse_args()

    import torch

    from unmask.config import from_dict
    from unmask.training.config import TrainConfig
    from unmask.training.engine import detector_spec, export_model
    from unmask.training.tile_data import TileDataModule, tile_spec

    torch.set_num_threads(1)
    run = Path(args.run)
    ckpts = sorted(
        (run / "checkpoints").glob("best-*.ckpt" if args.ckpt == "best" else "last.ckpt")
    )
    if not ckpts:
        raise SystemExit(f"{run}: no {args.ckpt} checkpoint")
    ckpt = ckpts[-1]
    hp = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
    cfg = hp["config"]
    cfg = cfg if isinstance(cfg, TrainConfig) else from_dict(TrainConfig, cfg)
    dm = TileDataModule(cfg, val_only=True)  # export needs val only
    dm.setup()
    out = Path(args.out) if args.out else run
    export_model(cfg, detector_spec(cfg), dm, ckpt, out, None, tiles=tile_spec(cfg))
    print(f"exported {ckpt} -> {out}")


if __name__ == "__main__":
    main()
