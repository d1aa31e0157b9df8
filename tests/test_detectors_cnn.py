"""Contract tests for every registered CNN detector (tiny inputs, CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unmask.detectors import create_detector, list_detectors
from unmask.detectors.cnn import build_cnn, resolve_name

CNN_DETECTORS = list_detectors(family="cnn")
EXTRA_KW = {"timm": {"backbone": "resnet10t"}, "resnet18-dct": {"input_size": 32},
            "f3net": {"input_size": 32}}  # fmt: skip


def _inputs(model: nn.Module, n: int = 2, size: int = 32):
    torch.manual_seed(0)
    x = torch.randn(n, 3, size, size)
    if getattr(model, "needs_landmarks", False):
        return (x, torch.rand(n, 468, 3))
    return (x,)


def test_expected_detectors_registered():
    for name in ("resnet18", "resnet18-dct", "xception", "efficientnet_b0", "timm", "f3net",
                 "two-stream"):  # fmt: skip
        assert name in CNN_DETECTORS


@pytest.mark.parametrize("name", CNN_DETECTORS)
@pytest.mark.parametrize("num_classes", [2, 3])
def test_detector_contract(name: str, num_classes: int):
    model = create_detector(
        name, num_classes=num_classes, pretrained=False, **EXTRA_KW.get(name, {})
    )
    assert isinstance(model, nn.Module)
    model.train()
    args = _inputs(model)
    logits = model(*args)
    assert logits.shape == (2, num_classes)
    y = torch.tensor([0, num_classes - 1])
    loss = nn.functional.cross_entropy(logits, y)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    layers = model.gradcam_layers()
    assert layers and all(isinstance(m, nn.Module) for m in layers)
    members = {id(m) for m in model.modules()}
    assert all(id(m) in members for m in layers)
    model.eval()
    with torch.no_grad():
        feats = model.features(*args)
    assert feats.ndim == 2 and feats.shape[0] == 2 and feats.shape[1] > 0
    assert torch.isfinite(feats).all()


@pytest.mark.parametrize("name", ["resnet18-dct", "f3net", "two-stream"])
def test_any_input_size(name: str):
    model = create_detector(name, **EXTRA_KW.get(name, {})).eval()
    for size in (32, 40):
        with torch.no_grad():
            assert model(*_inputs(model, size=size)).shape == (2, 2)


def test_unknown_num_classes_rejected():
    with pytest.raises(ValueError, match="num_classes"):
        create_detector("resnet18", num_classes=5)


def test_timm_shorthand_and_generic_path():
    assert resolve_name("timm:convnext_atto") == ("timm", {"backbone": "convnext_atto"})
    m = build_cnn("timm:convnext_atto", num_classes=3)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_pretrained_without_local_weights_is_one_line_unless_downloads_allowed(monkeypatch):
    """No local ImageNet weights for resnet18/xception: a one-line error, never a download;
    with UNMASK_ALLOW_DOWNLOAD=1 the request passes through to timm (mocked here)."""
    import timm

    from unmask.errors import UnmaskError

    seen = {}
    real = timm.create_model

    def fake_create(name, pretrained=False, **kw):
        seen[name] = pretrained
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", fake_create)
    monkeypatch.delenv("UNMASK_ALLOW_DOWNLOAD", raising=False)
    for name in ("resnet18", "xception"):
        with pytest.raises(UnmaskError) as err:
            create_detector(name, pretrained=True)
        assert "\n" not in str(err.value)
    assert all(v is False for v in seen.values())
    monkeypatch.setenv("UNMASK_ALLOW_DOWNLOAD", "1")
    create_detector("resnet18", pretrained=True)
    create_detector("xception", pretrained=True)
    assert seen["resnet18"] is True and seen["legacy_xception"] is True
    create_detector("efficientnet_b0")
    assert seen["efficientnet_b0"] is False


def test_dct_stats_are_buffers_and_fit():
    m = create_detector("resnet18-dct", input_size=16)
    keys = m.state_dict().keys()
    assert "input_stats.mean" in keys and "input_stats.std" in keys
    batches = [torch.randn(4, 3, 16, 16) * 2 + 1 for _ in range(3)]
    assert m.fit_input_stats(batches) == 12
    z = m.input_stats(torch.cat(batches))
    assert z.mean().abs() < 1e-3
    assert (z.std(0) - 1).abs().mean() < 0.1


def test_dct_is_orthonormal():
    from unmask.detectors.dct_input import dct2, idct2

    x = torch.randn(2, 3, 12, 10, dtype=torch.float64)
    c = dct2(x)
    assert torch.allclose(idct2(c), x, atol=1e-10)
    assert torch.allclose((c**2).sum(), (x**2).sum())
    const = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    c = dct2(const)[0, 0]
    assert c[0, 0].item() == pytest.approx(8.0) and c.abs().sum().item() == pytest.approx(8.0)


def test_f3net_branch_shapes():
    from unmask.detectors.f3net import FAD, LFS

    x = torch.randn(2, 3, 40, 40)
    assert FAD(40)(x).shape == (2, 12, 40, 40)
    assert LFS()(x).shape == (2, 6, 20, 20)
    # with zero learnable residuals the four FAD bands of the "all" filter reproduce x
    fad = FAD(40)
    with torch.no_grad():
        fad.learnable.fill_(0.0)
    out = fad(x)
    assert torch.allclose(out[:, 9:12], x, atol=1e-4)
    # low + middle + high cover every coefficient with u+v <= S exactly once
    from unmask.detectors.dct_input import dct2, idct2
    from unmask.detectors.f3net import band_mask

    smooth = idct2(dct2(x) * band_mask(40, 0, 40))
    out = fad(smooth)
    assert torch.allclose(out[:, 0:3] + out[:, 3:6] + out[:, 6:9], smooth, atol=1e-4)


def test_two_stream_landmark_modes_and_missing_landmarks():
    from unmask.detectors.two_stream import render_heatmap

    lm = torch.zeros(2, 468, 3)
    lm[0, :, :2] = 0.5
    heat = render_heatmap(lm, (16, 16))
    assert heat.shape == (2, 1, 16, 16)
    assert heat[0].max() == pytest.approx(1.0) and heat[1].abs().sum() == 0
    for mode in ("mlp", "heatmap"):
        m = create_detector("two-stream", landmark_mode=mode).eval()
        with torch.no_grad():
            a = m(torch.randn(2, 3, 32, 32), torch.zeros(2, 468, 2))  # 2-D landmarks, missing
        assert a.shape == (2, 2) and torch.isfinite(a).all()


def test_timm_shorthand_name():
    from unmask.detectors import create_detector

    model = create_detector("timm:resnet10t", num_classes=3).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
