"""`--device` checked before any work: a missing GPU is one line, not a torch traceback."""

from __future__ import annotations

from unmask.errors import UnmaskError


def check_device(device: str | None) -> str:
    """`device` ("cpu", "cuda", "cuda:1", "mps"; None -> "cpu") if this machine has it,
    else `UnmaskError` saying what to use instead."""
    name = (device or "cpu").strip().lower()
    kind, _, index = name.partition(":")
    if kind == "cpu" and not index:
        return "cpu"
    if kind not in ("cuda", "mps") or (index and not index.isdigit()):
        raise UnmaskError(f"--device {device!r}: expected cpu, cuda, cuda:N or mps")
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UnmaskError(f"--device {device}: no CUDA GPU is available (use --device cpu)")
        if index and int(index) >= torch.cuda.device_count():
            raise UnmaskError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
            )
    elif not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UnmaskError(f"--device {device}: Apple MPS is not available (use --device cpu)")
    return name
