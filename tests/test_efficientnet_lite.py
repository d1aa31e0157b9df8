"""unmask's own EfficientNet-Lite (`unmask.detectors.efficientnet_lite`) is timm's network:
same state-dict keys, order and shapes, same outputs on the same weights; models built on
it score without importing timm."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from unmask.detectors.efficientnet_lite import VARIANTS, Conv2dSame, efficientnet_lite


def _random_state(reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Random weights AND batch-norm statistics, so a misplaced norm or skip shows."""
    gen = torch.Generator().manual_seed(1)
    out = {}
    for k, v in reference.items():
        if not v.is_floating_point():
            out[k] = v
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=gen) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=gen) * 0.1
    return out


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("num_classes", [0, 1000])
def test_same_network_as_timm(name: str, num_classes: int) -> None:
    timm = pytest.importorskip("timm")
    ref = timm.create_model(name, num_classes=num_classes, pretrained=False).eval()
    own = efficientnet_lite(name, num_classes).eval()
    ref_state, own_state = ref.state_dict(), own.state_dict()
    assert list(own_state) == list(ref_state)
    assert [t.shape for t in own_state.values()] == [t.shape for t in ref_state.values()]
    state = _random_state(ref_state)
    ref.load_state_dict(state)
    own.load_state_dict(state)
    for size in (224, 97):  # odd sizes exercise TensorFlow's asymmetric "same" padding
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
        with torch.inference_mode():
            assert torch.allclose(own(x), ref(x), atol=1e-5, rtol=1e-5)
    assert own.num_features == ref.num_features
    assert tuple(own.pretrained_cfg["mean"]) == tuple(ref.pretrained_cfg["mean"])
    assert own.feature_info[-1]["module"] == ref.feature_info[-1]["module"]


def test_same_padding_by_hand() -> None:
    """Stride 2, kernel 3 on 4 px: TensorFlow pads 0 before and 1 after (output 2 px)."""
    conv = Conv2dSame(1, 1, 3, 2, 0, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    with torch.no_grad():
        out = conv(x)[0, 0]
    assert out.shape == (2, 2)
    # top-left window rows 0-2, cols 0-2; bottom-right window rows 2-3 (+ a zero row/col)
    assert float(out[0, 0]) == float(x[0, 0, 0:3, 0:3].sum())
    assert float(out[1, 1]) == float(x[0, 0, 2:4, 2:4].sum())


def test_unknown_variant_lists_the_known() -> None:
    with pytest.raises(ValueError, match="tf_efficientnet_lite0"):
        efficientnet_lite("tf_efficientnet_lite9")


def test_scoring_a_lite_model_never_imports_timm(tmp_path) -> None:
    """The shipped default's blend member is an EfficientNet-Lite0: loading and scoring it
    must not pay timm's and torchvision's imports (seconds of start-up)."""
    code = (
        "import sys, numpy as np\n"
        "from unmask.inference.loader import load_predictor\n"
        "from unmask.modelfile import default_model_dir\n"
        "p = load_predictor(default_model_dir())\n"
        "m = p.members['blend']\n"
        "m.predict_proba([np.zeros((256, 256, 3), np.uint8)])\n"
        "print(sorted(k for k in ('timm', 'torchvision') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
