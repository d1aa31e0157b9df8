"""The scoring copy of a CNN (`unmask.inference.fast_eval`): batch norm folded into the
convolutions gives the same logits, a wrong fold is refused, and TorchPredictor scores with
the fast copy exactly as with the network as trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unmask.inference.fast_eval import fast_copy, fold_batchnorm, fold_conv_bn


def _bn(channels: int, seed: int) -> nn.BatchNorm2d:
    gen = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels, eps=1e-3)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(channels, generator=gen))
        bn.bias.copy_(torch.randn(channels, generator=gen))
        bn.running_mean.copy_(torch.randn(channels, generator=gen))
        bn.running_var.copy_(torch.rand(channels, generator=gen) + 0.5)
    return bn.eval()


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("groups", [1, 4])
def test_fold_conv_bn_is_exact(bias: bool, groups: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=groups, bias=bias)
    bn = _bn(8, seed=1)
    x = torch.randn(3, 4, 9, 9)
    with torch.no_grad():
        want = bn(conv(x))
        fold_conv_bn(conv, bn)
        got = conv(x)
    assert conv.bias is not None
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


def test_fold_by_hand() -> None:
    """1x1 conv of weight 2 on a constant 3, then bn (mean 1, var 4 - eps, gamma 5, beta 7):
    (6 - 1) / 2 * 5 + 7 = 19.5."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    bn = nn.BatchNorm2d(1, eps=0.0).eval()
    with torch.no_grad():
        conv.weight.fill_(2.0)
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(4.0)
        bn.weight.fill_(5.0)
        bn.bias.fill_(7.0)
        fold_conv_bn(conv, bn)
        assert float(conv(torch.full((1, 1, 2, 2), 3.0))[0, 0, 0, 0]) == pytest.approx(19.5)


def test_fold_batchnorm_keeps_the_activation() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), _bn(6, 2), nn.ReLU(), nn.Conv2d(6, 2, 1), _bn(2, 3))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = net(x)
        assert fold_batchnorm(net) == 2
        assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        assert torch.allclose(net(x), want, atol=1e-5, rtol=1e-5)


class _NormFirst(nn.Module):
    """Registered conv then bn, but the bn runs BEFORE the conv: folding would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = _bn(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.bn(x)).mean((2, 3))


def test_fast_copy_refuses_a_wrong_fold() -> None:
    torch.manual_seed(0)
    net = _NormFirst().eval()
    assert fast_copy(net, torch.randn(2, 4, 8, 8)) is net  # the original, untouched
    assert isinstance(net.bn, nn.BatchNorm2d)


def test_fast_copy_leaves_the_original_alone() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), _bn(4, 6), nn.Flatten()).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = fast_copy(net, torch.randn(2, 3, 8, 8))
    assert fast is not net
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_predictor_scores_with_the_fast_copy(tmp_path) -> None:
    """Saved with non-trivial batch-norm statistics: the predictor's scores equal the
    network as trained on the same preprocessed crops."""
    from safetensors.torch import load_file, save_file

    from doubles.models import tiny_torch_model
    from unmask.inference.loader import load_predictor
    from unmask.modelfile import WEIGHTS_FILE

    d = tiny_torch_model(tmp_path / "m")
    state = load_file(str(d / WEIGHTS_FILE))
    gen = torch.Generator().manual_seed(0)
    for k, v in state.items():
        if k.endswith("running_mean"):
            state[k] = torch.randn(v.shape, generator=gen) * 0.3
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=gen) + 0.5
    save_file(state, str(d / WEIGHTS_FILE))
    pred = load_predictor(d)
    assert pred.fast is not pred.model
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(5)]
    with torch.inference_mode():
        want = torch.softmax(pred.model(pred.preprocess(crops)), 1).numpy()
    np.testing.assert_allclose(pred.predict_proba(crops), want, atol=1e-5)


def test_the_shipped_members_score_with_folded_copies() -> None:
    """A silent fall-back to the unfolded network would only show as a slower detect."""
    from unmask.inference.loader import load_predictor
    from unmask.modelfile import default_model_dir

    for name, member in load_predictor(default_model_dir()).members.items():
        assert member.fast is not member.model, name
        assert not any(isinstance(m, nn.BatchNorm2d) for m in member.fast.modules()), name


def test_predictor_preprocess_is_training_preprocess_in_nhwc(tmp_path) -> None:
    """The predictor normalises the batch in channels-last memory; the values are exactly
    those of `resize_normalize`, which training uses, crop by crop."""
    from doubles.models import tiny_torch_model
    from unmask.data.normalize import resize_normalize
    from unmask.inference.loader import load_predictor

    pred = load_predictor(tiny_torch_model(tmp_path / "m"))
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (40, 64, 97)]
    x = pred.preprocess(crops)
    want = np.stack([resize_normalize(c, pred.input_size, pred.mean, pred.std) for c in crops])
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, torch.from_numpy(want))
