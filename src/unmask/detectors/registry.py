"""One registry for every detector, classical and CNN, in the style of timm.

    @register_detector("resnet18", family="cnn", input="rgb")
    def resnet18(num_classes=2, pretrained=False, **kw) -> nn.Module: ...

Registration happens when a detector module is imported; the registry imports the known
detector modules lazily on first use, so `import unmask` never pulls in torch.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Every module of this package may register detectors: a new one is found by being here
# (`_detector_modules`), with no list to extend. Classical ones need only NumPy/scikit-learn
# and are imported only when a classical detector is asked for: scikit-learn (with SciPy
# and pandas) is about a quarter of `unmask detect`'s start-up with a CNN model.
_CLASSICAL_MODULES = frozenset({"unmask.detectors.classical"})
_NOT_DETECTORS = frozenset({"unmask.detectors.registry", "unmask.detectors.protocol"})


def _detector_modules() -> list[str]:
    """The modules of `unmask.detectors` whose import may register detectors, sorted."""
    import pkgutil
    from pathlib import Path

    here = [str(Path(__file__).parent)]  # this package's folder (no import of the package)
    names = (f"{__package__}.{m.name}" for m in pkgutil.iter_modules(here))
    return sorted(n for n in names if n not in _NOT_DETECTORS)


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    family: str  # "classical" (scikit-learn Pipeline) or "cnn" (torch nn.Module)
    builder: Callable[..., Any]
    description: str = ""
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_landmarks(self) -> bool:
        """The network also takes (N, 468, 3) face-mesh landmarks (tag `needs_landmarks`)."""
        return bool(self.tags.get("needs_landmarks", False))

    @property
    def fits_input_stats(self) -> bool:
        """The engine fits input statistics on the training split (tag `input_stats`)."""
        return bool(self.tags.get("input_stats", False))

    @property
    def takes_input_size(self) -> bool:
        """The builder sizes buffers to the input (resnet18-dct, f3net): pass `input_size`."""
        return "input_size" in inspect.signature(self.builder).parameters


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


def _load_all(family: str | None = None) -> None:
    """Import the detector modules (with `family`: only the classical ones, or only the
    others)."""
    global _loaded
    if _loaded:
        return
    for mod in _detector_modules():
        if family is not None and (mod in _CLASSICAL_MODULES) != (family == "classical"):
            continue
        importlib.import_module(mod)
    _loaded = family is None


def list_detectors(family: str | None = None) -> list[str]:
    """Names of all registered detectors (optionally one family), sorted."""
    _load_all()
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def detector_info(name: str) -> DetectorInfo:
    if name not in _REGISTRY:
        _load_all()
    if name not in _REGISTRY:
        from unmask.errors import ConfigError

        raise ConfigError(
            f"unknown detector {name!r}; valid detectors: {', '.join(list_detectors())}"
        )
    return _REGISTRY[name]


def family_detector(name: str, family: str) -> DetectorInfo:
    """`detector_info(name)`, refused in one line unless the detector is of `family`: what
    a family's own trainer or builder asks before it takes a detector."""
    info = detector_info(name)
    if info.family != family:
        from unmask.errors import ConfigError

        raise ConfigError(f"detector {name!r} is {info.family}, not {family}")
    return info


def resolve_name(name: str, kwargs: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The one parser of the `timm:<model>` shorthand:
    `timm:<model>` -> ("timm", {"backbone": "<model>", ...}); other names unchanged."""
    kwargs = dict(kwargs or {})
    if name.startswith("timm:"):
        kwargs["backbone"] = name.split(":", 1)[1]
        name = "timm"
    return name, kwargs


def create_detector(name: str, **kwargs: Any) -> Any:
    """Build detector `name`: a scikit-learn Pipeline (classical) or an nn.Module (cnn).

    `timm:<model>` is shorthand for `create_detector("timm", backbone="<model>")`."""
    name, kwargs = resolve_name(name, kwargs)
    return detector_info(name).builder(**kwargs)


def check_saved(name: str, family: str, kwargs: dict[str, Any]) -> DetectorInfo:
    """Refuse, in one line and before anything is built, a saved model whose builder is not
    registered in `family`, whose options the builder does not take, or whose timm backbone
    is not a plain name in timm's own registry (no hub, no local dir, no file)."""
    from unmask.errors import UnmaskError

    _load_all(family)
    if name not in _REGISTRY:
        _load_all()
    if name not in _REGISTRY:
        raise UnmaskError(f"detector {name!r} is not a registered detector")
    info = _REGISTRY[name]
    if info.family != family:
        raise UnmaskError(f"detector {name!r} is {info.family}, not {family}")
    params = inspect.signature(info.builder).parameters
    open_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in kwargs:
        if key in ("num_classes", "pretrained"):
            raise UnmaskError(f"detector.kwargs.{key}: set by the loader, not the model file")
        if key not in params and not open_kw:
            raise UnmaskError(f"detector {name!r} takes no option {key!r}")
    backbone = kwargs.get("backbone")
    if backbone is not None:
        if "backbone" not in params:
            raise UnmaskError(f"detector {name!r} takes no option 'backbone'")
        from unmask.detectors.efficientnet_lite import VARIANTS

        if str(backbone) in VARIANTS:  # built by unmask itself: no timm import needed
            return info
        import timm

        if not timm.is_model(str(backbone)):
            raise UnmaskError(f"backbone {str(backbone)[:40]!r} is not in timm's registry")
    return info
