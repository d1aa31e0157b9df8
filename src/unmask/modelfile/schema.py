"""`SavedModel`: what `model.json` may say, as frozen dataclasses checked on construction.

A saved model is a folder (see `unmask.modelfile`); its `model.json` is parsed by the strict
config loader (`unmask.config.from_dict(..., strict=True)`): unknown keys fail, missing keys
fail, and every value below is range-checked here, before anything is built or allocated.
Checks that need the detector registry (is the builder known, does it take these options,
is the timm backbone a plain registry name) run in `unmask.detectors.registry.check_saved`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from unmask.data.spec import PreprocessSpec
from unmask.data.tiles import TileSpec

MODEL_FORMAT = "unmask-model/2"
INPUT_SIZE_RANGE = (16, 1024)  # CNN input side: 1024^2 x 3 floats per face at most
FEATURE_SIZE_RANGE = (16, 1024)  # classical crops are resized to this before features
MAX_MEMBERS = 8
MAX_KWARGS = 16
MAX_STR = 128

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
MEMBER_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}$")
# A plain timm registry name, optionally with its pretrained tag: resnet10t, vit_small.augreg
_PLAIN_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
# Options that make a builder read files or reach the network: never in a model file.
_PATHLIKE_KEYS = re.compile(
    r"(path|dir|file|url|uri|hub|cfg|overlay|cache|checkpoint|root)", re.IGNORECASE
)
_PATHLIKE_VALUES = ("hf-hub:", "hf_hub:", "local-dir:", "file:", "http:", "https:", "timm/")


def _finite(x: float, where: str) -> None:
    if not math.isfinite(x):
        raise ValueError(f"{where} must be a finite number, got {x}")


def _check_option(key: str, value: Any) -> None:
    where = f"detector.kwargs.{key}"
    if _PATHLIKE_KEYS.search(key):
        raise ValueError(f"{where} is not allowed: model files may not name files or URLs")
    values = value if isinstance(value, list) else [value]
    if len(values) > 64:
        raise ValueError(f"{where}: at most 64 values")
    for v in values:
        if isinstance(v, float):
            _finite(v, where)
        elif isinstance(v, str):
            low = v.lower()
            if len(v) > MAX_STR or "/" in v or "\\" in v or low.startswith(_PATHLIKE_VALUES):
                raise ValueError(f"{where}: {v[:40]!r} looks like a path or URL; not allowed")
        elif isinstance(v, int) and not isinstance(v, bool) and not -1024 <= v <= 1024:
            # sizes, widths and counts: bounded so an option never allocates gigabytes
            raise ValueError(f"{where}: {v} is out of range [-1024, 1024]")
        elif not isinstance(v, (bool, int)):
            raise ValueError(f"{where}: only numbers, strings and booleans are allowed")


@dataclass(frozen=True)
class DetectorRef:
    """Which registered builder made the network and with which options (never paths)."""

    name: str  # registry name, e.g. "timm", "resnet18-dct", "dct-ridge", "composite"
    family: Literal["cnn", "classical", "composite"]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"detector.name {self.name[:40]!r} is not a registry name")
        if len(self.kwargs) > MAX_KWARGS:
            raise ValueError(f"detector.kwargs: at most {MAX_KWARGS} options")
        for key, value in self.kwargs.items():
            _check_option(str(key), value)
        backbone = self.kwargs.get("backbone")
        if backbone is not None and not (
            isinstance(backbone, str) and _PLAIN_MODEL.match(backbone)
        ):
            raise ValueError(
                f"detector.kwargs.backbone {str(backbone)[:40]!r}: only plain timm registry "
                "names are allowed (no hf-hub:, local-dir:, file: or paths)"
            )

    @property
    def label(self) -> str:
        """A short human name: `dct-ridge`, `timm/resnet10t`, `composite`."""
        backbone = self.kwargs.get("backbone")
        return f"{self.name}/{backbone}" if backbone else self.name


@dataclass(frozen=True)
class CnnInput:
    """How a CNN member sees a face: the resized crop, or native-pixel tiles."""

    size: int  # network input side; with tiles, equal to tiles.size (tiles are never resized)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    landmarks: bool  # the network also takes (468, 3) face-mesh landmarks
    tiles: TileSpec | None = None  # None: the resized crop; else tiles cut from the original
    resize: str = "PIL bilinear"

    def __post_init__(self) -> None:
        lo, hi = INPUT_SIZE_RANGE
        if not lo <= self.size <= hi:
            raise ValueError(f"input.size must be in [{lo}, {hi}], got {self.size}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("input.mean and input.std need 3 values (RGB)")
        for m in self.mean:
            _finite(m, "input.mean")
        for s in self.std:
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"input.std must be finite and > 0, got {s}")
        if self.tiles is not None:
            if self.tiles.size != self.size:
                raise ValueError("input.size must equal input.tiles.size (tiles are not resized)")
            if self.landmarks:
                raise ValueError("input.landmarks is not supported with input.tiles")
        if len(self.resize) > MAX_STR:
            raise ValueError("input.resize: too long")


@dataclass(frozen=True)
class FeatureInput:
    """How a classical model sees a face: grayscale crop resized to size x size -> features."""

    kind: Literal["spectrum", "dct"]
    size: int

    def __post_init__(self) -> None:
        lo, hi = FEATURE_SIZE_RANGE
        if not lo <= self.size <= hi:
            raise ValueError(f"features.size must be in [{lo}, {hi}], got {self.size}")


@dataclass(frozen=True)
class ClassicalHead:
    """The exported classifier's structure; its arrays are in weights.safetensors."""

    type: Literal["linear", "svm"]
    link: Literal["logistic", "sigmoid-calibrated"]
    classes: tuple[int, ...]  # class indices the classifier was fitted on
    classifier: str = ""
    kernel: Literal["", "rbf", "linear"] = ""
    n_estimators: int = 0  # svm: one per one-vs-rest class

    def __post_init__(self) -> None:
        if self.classes not in ((0, 1), (0, 1, 2)):
            raise ValueError(f"head.classes must be [0, 1] or [0, 1, 2], got {list(self.classes)}")
        if self.type == "svm" and not (1 <= self.n_estimators <= 3 and self.kernel):
            raise ValueError("an svm head needs a kernel and 1-3 estimators")
        if len(self.classifier) > MAX_STR:
            raise ValueError("head.classifier: too long")


@dataclass(frozen=True)
class FusionMember:
    """One member of a composite: Platt calibration of its logit of P(fake), and its
    weight in logistic stacking (unused by the max rule).

    Face-size calibration (optional): with `size_edges` (crop-box sides in native pixels,
    increasing), a face whose box side falls in bin k = #{edges <= side} is calibrated
    with (size_a[k], size_b[k]) instead of (a, b). A native-pixel member's evidence
    depends on how many pixels the face has (issue 13: uninformative on large faces), so
    its weight is measured per size on validation. Faces of unknown size use (a, b)."""

    name: str  # its folder: members/<name>/
    a: float = 1.0
    b: float = 0.0
    weight: float = 0.0
    size_edges: tuple[float, ...] = ()
    size_a: tuple[float, ...] = ()
    size_b: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not MEMBER_NAME.match(self.name):
            raise ValueError(f"member name {self.name[:40]!r}: use a-z, 0-9, _ and - (<= 32)")
        for k in ("a", "b", "weight"):
            _finite(getattr(self, k), f"fusion member {self.name}.{k}")
        edges, n = self.size_edges, len(self.size_edges)
        if len(self.size_a) != (n + 1 if n else 0) or len(self.size_b) != len(self.size_a):
            raise ValueError(
                f"fusion member {self.name}: size_a and size_b need one value per size bin "
                f"({n + 1 if n else 0} for {n} size_edges)"
            )
        if n > 16 or any(not math.isfinite(e) or e <= 0 for e in edges):
            raise ValueError(f"fusion member {self.name}.size_edges: at most 16 positive numbers")
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(f"fusion member {self.name}.size_edges must increase")
        for k in ("size_a", "size_b"):
            for v in getattr(self, k):
                _finite(v, f"fusion member {self.name}.{k}")


@dataclass(frozen=True)
class Fusion:
    """z_i = a_i * logit(P_i(fake)) + b_i, then
    max:      score = max_i sigmoid(z_i)                    driver = argmax_i z_i
    logistic: score = sigmoid(bias + sum_i weight_i * z_i)  driver = argmax_i weight_i * z_i
    """

    rule: Literal["max", "logistic"]
    members: tuple[FusionMember, ...]
    bias: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= len(self.members) <= MAX_MEMBERS:
            raise ValueError(f"fusion needs 1-{MAX_MEMBERS} members, got {len(self.members)}")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError("fusion member names must be unique")
        _finite(self.bias, "fusion.bias")


@dataclass(frozen=True)
class SavedModel:
    """Everything in model.json. Exactly one of input (torch), features + head (classical)
    or fusion (composite) is set, matching `kind`."""

    format: str
    kind: Literal["torch", "classical", "composite"]
    detector: DetectorRef
    classes: tuple[str, ...]  # logit order; classes[0] is always "real"
    preprocess: PreprocessSpec  # how faces are found and cropped (the crop box too)
    threshold: float  # verdict "fake" when P(fake) >= threshold
    threshold_rule: str
    input: CnnInput | None
    features: FeatureInput | None
    head: ClassicalHead | None
    fusion: Fusion | None
    id: str
    unmask_version: str
    metrics: dict[str, Any]  # informational: validation/test figures
    training: dict[str, Any]  # informational: resolved config, data, selection, notes
    class_profiles: dict[str, Any]  # classical spectrum models: mean feature per class
    profile_size: int

    def __post_init__(self) -> None:
        if self.format != MODEL_FORMAT:
            raise ValueError(f"format must be {MODEL_FORMAT!r}")
        if self.classes not in (("real", "fake"), ("real", "gan", "edited")):
            raise ValueError(
                f"classes must be [real, fake] or [real, gan, edited], got {list(self.classes)}"
            )
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0):
            raise ValueError(f"threshold must be a finite number in [0, 1], got {self.threshold}")
        if len(self.threshold_rule) > 200 or len(self.id) > MAX_STR:
            raise ValueError("threshold_rule / id too long")
        family = {"torch": "cnn", "classical": "classical", "composite": "composite"}[self.kind]
        if self.detector.family != family:
            raise ValueError(f"kind {self.kind} needs detector.family {family!r}")
        parts = {"input": self.input, "features": self.features, "head": self.head}
        parts["fusion"] = self.fusion
        needed = {
            "torch": {"input"},
            "classical": {"features", "head"},
            "composite": {"fusion"},
        }[self.kind]
        for name, value in parts.items():
            if (value is not None) != (name in needed):
                verb = "needs" if name in needed else "must not have"
                raise ValueError(f"a {self.kind} model {verb} {name!r}")
        if self.head is not None and len(self.head.classes) != len(self.classes):
            raise ValueError("head.classes and classes disagree")
        if self.kind == "composite" and len(self.classes) != 2:
            raise ValueError("a composite model is binary: classes [real, fake]")
        if self.class_profiles:
            if set(self.class_profiles) - set(self.classes):
                raise ValueError("class_profiles names unknown classes")
            for v in self.class_profiles.values():
                if not (isinstance(v, list) and len(v) <= 4096):
                    raise ValueError("class_profiles: lists of at most 4096 numbers")
                for x in v:
                    if isinstance(x, bool) or not isinstance(x, (int, float)):
                        raise ValueError("class_profiles: numbers only")
                    _finite(float(x), "class_profiles")
        if not 0 <= self.profile_size <= FEATURE_SIZE_RANGE[1]:
            raise ValueError("profile_size out of range")

    @property
    def label(self) -> str:
        return self.detector.label

    @property
    def tiles(self) -> TileSpec | None:
        return self.input.tiles if self.input is not None else None
