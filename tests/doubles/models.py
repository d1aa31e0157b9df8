"""Tiny saved models for tests and benchmarks (randomly initialised, seconds to make).

    tiny_torch_model(dir)                              # timm test_resnet on 32 px crops
    tiny_torch_model(dir, tiles=TileSpec(32, 4))       # the same net on native-pixel tiles

They test the saved-model contract (write -> load -> score), not detection quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unmask.data.spec import PreprocessSpec

TINY_SPEC = PreprocessSpec(crop_size=64, keep_whole=True)


def tiny_torch_model(
    out: str | Path,
    tiles: Any = None,
    seed: int = 0,
    threshold: float = 0.5,
    spec: PreprocessSpec = TINY_SPEC,
) -> Path:
    import torch
    from safetensors.torch import save_file

    from unmask.data.normalize import IMAGENET_MEAN, IMAGENET_STD
    from unmask.detectors.cnn import build_cnn
    from unmask.modelfile import WEIGHTS_FILE, new_saved_model, write_saved_model

    torch.manual_seed(seed)
    kwargs = {"backbone": "test_resnet"}
    model = build_cnn("timm", num_classes=2, **kwargs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / WEIGHTS_FILE)
    saved = new_saved_model(
        id=out.name,
        kind="torch",
        detector={"name": "timm", "family": "cnn", "kwargs": kwargs},
        classes=["real", "fake"],
        preprocess=spec,
        input={
            "size": tiles.size if tiles is not None else 32,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "landmarks": False,
            "tiles": tiles,
            "resize": "PIL bilinear",
        },
        threshold=threshold,
        threshold_rule="fixed (test model)",
    )
    write_saved_model(out, saved)
    return out
