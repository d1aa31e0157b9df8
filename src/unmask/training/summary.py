"""Model summaries: a layer table, parameter counts, input/output shapes and MACs.

    from unmask.training.summary import summarize, format_summary
    s = summarize(model, input_size=224)
    print(format_summary(s))

MACs are counted with `torch.utils.flop_counter.FlopCounterMode` on one image
(MACs = FLOPs / 2; only the ops it knows: convolutions, matmuls, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    params: int


@dataclass
class Summary:
    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    embed_shape: tuple[int, ...]
    total_params: int
    trainable_params: int
    macs: int
    layers: list[LayerRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)


def _example_inputs(input_size: int, needs_landmarks: bool) -> tuple[torch.Tensor, ...]:
    x = torch.randn(1, 3, input_size, input_size)
    if needs_landmarks:
        return (x, torch.rand(1, 468, 3))
    return (x,)


def summarize(
    model: nn.Module,
    input_size: int = 224,
    depth: int = 2,
    name: str = "",
    needs_landmarks: bool = False,
) -> Summary:
    """Run one random image through `model` (eval mode, no grad) and describe it."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    inputs = _example_inputs(input_size, needs_landmarks)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    rows: list[LayerRow] = []
    for mod_name, mod in model.named_modules():
        if not mod_name or mod_name.count(".") >= depth:
            continue

        def hook(_m, _i, out, key=mod_name):
            if isinstance(out, torch.Tensor):
                shapes[key] = tuple(out.shape)

        hooks.append(mod.register_forward_hook(hook))
        rows.append(
            LayerRow(mod_name, type(mod).__name__, None, sum(p.numel() for p in mod.parameters()))
        )
    try:
        with torch.no_grad():
            counter = FlopCounterMode(display=False)
            with counter:
                out = model(*inputs)
            emb = model.features(*inputs)  # every detector has it (detectors.protocol)
    finally:
        for h in hooks:
            h.remove()
    for r in rows:
        r.output_shape = shapes.get(r.name)
    return Summary(
        name=name or type(model).__name__,
        input_shape=tuple(inputs[0].shape),
        output_shape=tuple(out.shape),
        embed_shape=tuple(emb.shape),
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=int(counter.get_total_flops() // 2),
        layers=rows,
    )


def _human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def format_summary(s: Summary) -> str:
    """A plain-text table."""
    w_name = max([len(r.name) for r in s.layers] + [5])
    w_kind = max([len(r.kind) for r in s.layers] + [4])
    lines = [
        f"{'layer':<{w_name}}  {'type':<{w_kind}}  {'output shape':<22}  {'params':>10}",
        "-" * (w_name + w_kind + 40),
    ]
    for r in s.layers:
        shape = "x".join(map(str, r.output_shape[1:])) if r.output_shape else "-"
        indent = "  " * r.name.count(".")
        lines.append(
            f"{indent + r.name:<{w_name}}  {r.kind:<{w_kind}}  {shape:<22}  {r.params:>10,}"
        )
    lines += [
        "-" * (w_name + w_kind + 40),
        f"model:            {s.name}",
        f"input:            {tuple(s.input_shape)}",
        f"output (logits):  {tuple(s.output_shape)}",
        f"embedding:        {tuple(s.embed_shape)}",
        f"parameters:       {s.total_params:,} total, {s.trainable_params:,} trainable",
        f"MACs per image:   {_human(s.macs)} ({s.macs:,})",
    ]
    return "\n".join(lines)
