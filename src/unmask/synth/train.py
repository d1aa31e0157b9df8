"""Training and sampling loops for the synth nets (CPU-friendly defaults, `device="cuda"` ok).

Images go in and out as uint8 RGB arrays (N, S, S, 3); inside the nets they are in [-1, 1].
Both loops are deterministic for a given `seed` on the same device and thread count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unmask.synth.nets import AutoEncoder, Critic, Generator, gradient_penalty, load_nets, save_nets


def resolve_device(device: str) -> torch.device:
    from unmask.errors import UnmaskError

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UnmaskError("--device cuda: no CUDA GPU is available (use --device cpu)")
    return torch.device(device)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    x = ((x.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def _batches(n: int, batch_size: int, gen: torch.Generator):
    """Endless shuffled index batches (reshuffled every epoch, drop_last when possible)."""
    bs = min(batch_size, n)
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - bs + 1, bs):
            yield perm[i : i + bs]


def _flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = x.clone()
    x[flip] = x[flip].flip(-1)
    return x


def train_autoencoder(
    images: np.ndarray,
    upsampler: str = "transposed",
    steps: int = 400,
    batch_size: int = 16,
    lr: float = 2e-3,
    width: int = 32,
    depth: int = 3,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[AutoEncoder, list[float]]:
    """Fit the auto-encoder to `images` (uint8 (N, S, S, 3)) with an L1 loss; returns the
    model (eval mode, on CPU) and the loss per step."""
    from tqdm import tqdm

    dev = resolve_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AutoEncoder(upsampler, width=width, depth=depth).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    data = to_tensor(images)
    batches = _batches(len(data), batch_size, gen)
    losses: list[float] = []
    bar = tqdm(range(steps), desc=f"auto-encoder ({upsampler})", disable=not progress, unit="step")
    model.train()
    for _ in bar:
        x = _flip(data[next(batches)], gen).to(dev)
        loss = (model(x) - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(l1=f"{losses[-1]:.4f}")
    return model.eval().cpu(), losses


@torch.no_grad()
def reconstruct(
    model: AutoEncoder, images: np.ndarray, batch_size: int = 32, device: str = "cpu"
) -> np.ndarray:
    dev = resolve_device(device)
    model = model.eval().to(dev)
    out = [
        to_uint8(model(to_tensor(images[i : i + batch_size]).to(dev)))
        for i in range(0, len(images), batch_size)
    ]
    model.cpu()
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:]), np.uint8)


def train_wgan_gp(
    images: np.ndarray,
    size: int = 64,
    steps: int = 300,
    batch_size: int = 32,
    n_critic: int = 5,
    lr: float = 1e-4,
    gp_weight: float = 10.0,
    z_dim: int = 128,
    width: int = 32,
    seed: int = 0,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    ckpt_every: int = 100,
    sample_every: int = 50,
    resume: str | Path | None = None,
    progress: bool = True,
    on_sample: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[Generator, Critic, dict[str, Any]]:
    """WGAN-GP on `images` (uint8 (N, size, size, 3)). `steps` counts generator updates (each
    after `n_critic` critic updates). With `out_dir`, writes `ckpt-<step>.safetensors` every
    `ckpt_every` steps and `samples-<step>.png` grids (fixed z) every `sample_every` steps.
    `resume` restarts from such a checkpoint (weights and step; the optimisers start afresh)."""
    from tqdm import tqdm

    dev = resolve_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    start = 0
    if resume:
        nets, meta = load_nets(resume)
        g, d = nets["generator"], nets["critic"]
        start = int(meta.get("step", 0))
    else:
        g, d = Generator(size, z_dim, width), Critic(size, width)
    g, d = g.to(dev), d.to(dev)
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.0, 0.9))
    data = to_tensor(images)
    batches = _batches(len(data), batch_size, gen)
    fixed_z = torch.randn(32, g.z_dim, generator=gen).to(dev)
    hist: dict[str, Any] = {"w_dist": [], "gp": [], "g_loss": [], "checkpoints": [], "grids": []}
    snapshot = _Snapshots(out_dir, g, d, fixed_z, hist, seed, start + steps, on_sample)
    snapshot.every(sample_every, ckpt_every)
    t0 = time.perf_counter()
    bar = tqdm(
        range(start + 1, start + steps + 1), desc="wgan-gp", disable=not progress, unit="step"
    )
    for step in bar:
        for _ in range(n_critic):
            w, gp = _critic_step(g, d, opt_d, data[next(batches)], gen, dev, gp_weight)
        z = torch.randn(batch_size, g.z_dim, generator=gen).to(dev)
        loss_g = -d(g(z)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        hist["w_dist"].append(w.item())
        hist["gp"].append(gp.item())
        hist["g_loss"].append(loss_g.item())
        bar.set_postfix(w=f"{hist['w_dist'][-1]:.3f}", gp=f"{hist['gp'][-1]:.3f}")
        snapshot(step)
    hist["train_s"] = time.perf_counter() - t0
    hist["step"] = start + steps
    return g.eval().cpu(), d.eval().cpu(), hist


def _critic_step(g, d, opt_d, batch, gen, dev, gp_weight: float):
    """One critic update on a (flipped) real batch against as many generator samples;
    returns the Wasserstein estimate and the gradient penalty."""
    real = _flip(batch, gen).to(dev)
    z = torch.randn(real.shape[0], g.z_dim, generator=gen).to(dev)
    with torch.no_grad():
        fake = g(z)
    w = d(real).mean() - d(fake).mean()
    gp = gradient_penalty(d, real, fake)
    loss_d = -w + gp_weight * gp
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    return w, gp


class _Snapshots:
    """What a WGAN-GP run leaves in `out_dir` as it goes (nothing without one): a sample
    grid of the fixed z every `sample_every` steps and a checkpoint every `ckpt_every`,
    both at the last step too; their paths are listed in `hist`."""

    def __init__(self, out_dir, g, d, fixed_z, hist, seed: int, last: int, on_sample) -> None:
        self.out = Path(out_dir) if out_dir else None
        self.g, self.d, self.fixed_z, self.hist = g, d, fixed_z, hist
        self.seed, self.last, self.on_sample = seed, last, on_sample
        self.sample_every = self.ckpt_every = 0

    def every(self, sample_every: int, ckpt_every: int) -> None:
        self.sample_every, self.ckpt_every = sample_every, ckpt_every

    def due(self, every: int, step: int) -> bool:
        return bool(every) and (step % every == 0 or step == self.last)

    def __call__(self, step: int) -> None:
        from unmask.synth.common import image_grid, save_png

        if self.out is None:
            return
        if self.due(self.sample_every, step):
            self.g.eval()
            with torch.no_grad():
                imgs = to_uint8(self.g(self.fixed_z))
            self.g.train()
            p = self.out / f"samples-{step:06d}.png"
            save_png(p, image_grid(list(imgs), ncol=8))
            self.hist["grids"].append(str(p))
            if self.on_sample:
                self.on_sample(step, imgs)
        if self.due(self.ckpt_every, step):
            p = self.out / f"ckpt-{step:06d}.safetensors"
            save_nets(p, {"generator": self.g, "critic": self.d}, {"step": step, "seed": self.seed})
            self.hist["checkpoints"].append(str(p))


@torch.no_grad()
def sample(
    g: Generator, n: int, seed: int = 0, batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    """`n` generator samples as uint8 (n, size, size, 3); deterministic for `seed`."""
    dev = resolve_device(device)
    g = g.eval().to(dev)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - i), g.z_dim, generator=gen).to(dev)
        out.append(to_uint8(g(z)))
    g.cpu()
    size = g.config["size"]
    return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)
