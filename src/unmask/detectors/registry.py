"""One registry for every detector, classical and CNN, in the style of timm.

    @register_detector("resnet18", family="cnn", input="rgb")
    def resnet18(num_classes=2, pretrained=False, **kw) -> nn.Module: ...

Registration happens when a detector module is imported; the registry imports the known
detector modules lazily on first use, so `import unmask` never pulls in torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Modules whose import registers detectors. Classical ones need only NumPy/scikit-learn.
_DETECTOR_MODULES: tuple[str, ...] = (
    "unmask.detectors.classical",
    "unmask.detectors.cnn",
    "unmask.detectors.f3net",
    "unmask.detectors.two_stream",
)


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    family: str  # "classical" (scikit-learn Pipeline) or "cnn" (torch nn.Module)
    builder: Callable[..., Any]
    description: str = ""
    tags: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, DetectorInfo] = {}
_loaded = False


def register_detector(name: str, family: str, description: str = "", **tags: Any):
    """Decorator registering a builder under `name`. Names are unique."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name].builder is not fn:
            raise ValueError(f"detector {name!r} registered twice")
        doc = description or (fn.__doc__ or "").strip().splitlines()[0:1]
        _REGISTRY[name] = DetectorInfo(
            name, family, fn, doc if isinstance(doc, str) else "".join(doc), dict(tags)
        )
        return fn

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _DETECTOR_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            # A detector module that is not written yet is fine; a missing dependency
            # inside an existing module is a real error.
            if exc.name != mod:
                raise
    _loaded = True


def list_detectors(family: str | None = None) -> list[str]:
    """Names of all registered detectors (optionally one family), sorted."""
    _load_all()
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def detector_info(name: str) -> DetectorInfo:
    _load_all()
    if name not in _REGISTRY:
        from unmask.errors import ConfigError

        raise ConfigError(
            f"unknown detector {name!r}; valid detectors: {', '.join(list_detectors())}"
        )
    return _REGISTRY[name]


def create_detector(name: str, **kwargs: Any) -> Any:
    """Build detector `name`: a scikit-learn Pipeline (classical) or an nn.Module (cnn).

    `timm:<model>` is shorthand for `create_detector("timm", backbone="<model>")`."""
    if name.startswith("timm:"):
        return detector_info("timm").builder(backbone=name.split(":", 1)[1], **kwargs)
    return detector_info(name).builder(**kwargs)
