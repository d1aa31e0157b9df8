"""Small generative nets for `unmask synth`: an upsampling auto-encoder and a WGAN-GP.

AutoEncoder (Zhang, Karaman & Chang 2019, "Detecting and Simulating Artifacts in GAN Fake
Images", AutoGAN): GAN generators upsample with transposed convolutions (or resize + conv),
which leaves periodic traces in the spectrum. Reconstructing real faces through an
auto-encoder with the same kind of decoder puts those traces on real content, so a detector
can learn the fingerprint without ever seeing a GAN image. `upsampler` picks the decoder:
`transposed` (ConvTranspose2d 4x4 stride 2: checkerboard), `nearest` or `bilinear`
(resize x2 then 3x3 conv).

WGAN-GP (Gulrajani et al. 2017) with DCGAN-style nets: the generator maps z ~ N(0, I) through
a 4x4 ConvTranspose and stride-2 ConvTranspose blocks (BatchNorm, ReLU) to `size` px; the
critic mirrors it with stride-2 convs and LeakyReLU and no batch norm (the gradient penalty
is per sample), ending in one unbounded score.

Weights are saved as safetensors with the constructor arguments in the metadata (`config`),
so `load_*` rebuilds the net without running code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

UPSAMPLERS: tuple[str, ...] = ("transposed", "nearest", "bilinear")


def _check_size(size: int, lo: int = 16) -> int:
    if size < lo or size & (size - 1):
        raise ValueError(f"size must be a power of two >= {lo}, got {size}")
    return int(math.log2(size))


def _up(cin: int, cout: int, kind: str) -> nn.Module:
    if kind == "transposed":
        return nn.ConvTranspose2d(cin, cout, 4, 2, 1)
    if kind in ("nearest", "bilinear"):
        up = nn.Upsample(
            scale_factor=2, mode=kind, **({"align_corners": False} if kind == "bilinear" else {})
        )
        return nn.Sequential(up, nn.Conv2d(cin, cout, 3, 1, 1))
    raise ValueError(f"upsampler must be one of {', '.join(UPSAMPLERS)}, got {kind!r}")


class AutoEncoder(nn.Module):
    """Conv encoder (stride 2 x depth) + decoder of `depth` x2 upsamplers; in/out in [-1, 1]."""

    def __init__(self, upsampler: str = "transposed", width: int = 32, depth: int = 3) -> None:
        super().__init__()
        self.config = {"upsampler": upsampler, "width": width, "depth": depth}
        chans = [3] + [width * 2**i for i in range(depth)]
        enc: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            enc += [nn.Conv2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = []
        rev = chans[::-1]
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:], strict=True)):
            dec.append(_up(a, b, upsampler))
            if i < depth - 1:
                dec += [nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        dec.append(nn.Tanh())  # the last upsampler writes the image: its fingerprint stays
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Generator(nn.Module):
    def __init__(self, size: int = 64, z_dim: int = 128, width: int = 32) -> None:
        super().__init__()
        self.config = {"size": size, "z_dim": z_dim, "width": width}
        n_up = _check_size(size) - 2  # 4 -> size
        ch = [width * 2 ** (n_up - 1 - i) for i in range(n_up)] + [3]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch[0]),
            nn.ReLU(True),
        ]
        for i in range(n_up):
            last = i == n_up - 1
            layers.append(nn.ConvTranspose2d(ch[i], ch[i + 1], 4, 2, 1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(ch[i + 1]), nn.ReLU(True)]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class Critic(nn.Module):
    def __init__(self, size: int = 64, width: int = 32) -> None:
        super().__init__()
        self.config = {"size": size, "width": width}
        n_down = _check_size(size) - 2  # size -> 4
        ch = [3] + [width * 2**i for i in range(n_down)]
        layers: list[nn.Module] = []
        for a, b in zip(ch[:-1], ch[1:], strict=True):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(ch[-1], 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat of real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def save_nets(
    path: str | Path, nets: dict[str, nn.Module], meta: dict[str, Any] | None = None
) -> Path:
    """Save several nets into one safetensors file (`<name>.<param>` keys, configs in metadata)."""
    from safetensors.torch import save_file

    tensors = {}
    for name, net in nets.items():
        for k, v in net.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    metadata = {"configs": json.dumps({n: net.config for n, net in nets.items()})}
    metadata.update({k: json.dumps(v) for k, v in (meta or {}).items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return Path(path)


def load_nets(path: str | Path) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Rebuild the nets saved by `save_nets` (no code runs: tensors + JSON metadata)."""
    from safetensors import safe_open

    from unmask.errors import UnmaskError

    classes = {"autoencoder": AutoEncoder, "generator": Generator, "critic": Critic}
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (OSError, ValueError, RuntimeError) as exc:
        raise UnmaskError(
            f"{path}: not a readable safetensors file ({exc.__class__.__name__})"
        ) from None
    if "configs" not in meta:
        raise UnmaskError(f"{path}: no `configs` metadata; not saved by unmask synth")
    nets = {}
    for name, cfg in json.loads(meta["configs"]).items():
        if name not in classes:
            raise UnmaskError(f"{path}: unknown net {name!r}")
        net = classes[name](**cfg)
        sd = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        net.load_state_dict(sd)
        nets[name] = net
    extra = {k: json.loads(v) for k, v in meta.items() if k != "configs"}
    return nets, extra
