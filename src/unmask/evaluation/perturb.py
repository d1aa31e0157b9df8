"""Perturbations applied to face crops before scoring (robustness tables in `unmask eval`).

    parse_perturbations(["jpeg:90,70,50", "blur:1,2", "resize:0.5", "noise:0.02"])

jpeg:Q      re-encode as JPEG with quality Q (PIL, 4:2:0)
blur:S      Gaussian blur with sigma S pixels
resize:F    down-scale by F (bilinear, antialiased) and back up to the original size
noise:S     add Gaussian noise with std S (fraction of 255), seeded, clipped to 0..255
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unmask.errors import UnmaskError

KINDS: dict[str, tuple[float, float]] = {  # allowed value range per kind
    "jpeg": (1, 100),
    "blur": (0.0, 50.0),
    "resize": (0.01, 1.0),
    "noise": (0.0, 1.0),
}


@dataclass(frozen=True)
class Perturbation:
    kind: str  # "none" or one of KINDS
    value: float = 0.0

    @property
    def name(self) -> str:
        if self.kind == "none":
            return "none"
        v = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.kind}:{v}"


NONE = Perturbation("none")


def parse_perturbations(items: Sequence[str]) -> list[Perturbation]:
    """CLI strings -> [NONE, ...] (the clean run always comes first)."""
    out = [NONE]
    for item in items:
        kind, sep, values = item.partition(":")
        kind = kind.strip().lower()
        if kind == "none":
            continue
        if kind not in KINDS or not sep or not values.strip():
            raise UnmaskError(
                f"bad perturbation {item!r}; expected KIND:V1,V2 with KIND one of "
                f"{', '.join(KINDS)} (e.g. jpeg:90,70 blur:1,2 resize:0.5 noise:0.02)"
            )
        lo, hi = KINDS[kind]
        for v in values.split(","):
            try:
                x = float(v)
            except ValueError:
                raise UnmaskError(f"bad perturbation value {v!r} in {item!r}") from None
            if not lo <= x <= hi:
                raise UnmaskError(f"{kind} value {x} outside [{lo}, {hi}]")
            p = Perturbation(kind, x)
            if p not in out:
                out.append(p)
    return out


def apply(image: np.ndarray, p: Perturbation, seed: int = 0) -> np.ndarray:
    """Perturb one RGB uint8 image (returns a new array of the same shape)."""
    if p.kind == "none":
        return image
    from PIL import Image, ImageFilter

    im = Image.fromarray(np.ascontiguousarray(image))
    if p.kind == "jpeg":
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="JPEG", quality=int(p.value))
        buf.seek(0)
        with Image.open(buf) as j:
            return np.asarray(j.convert("RGB"))
    if p.kind == "blur":
        if p.value == 0:
            return image
        return np.asarray(im.filter(ImageFilter.GaussianBlur(radius=p.value)))
    if p.kind == "resize":
        w, h = im.size
        small = im.resize(
            (max(1, round(w * p.value)), max(1, round(h * p.value))), Image.Resampling.BILINEAR
        )
        return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))
    if p.kind == "noise":
        rng = np.random.default_rng(seed)
        noisy = image.astype(np.float64) + rng.normal(0.0, p.value * 255.0, image.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    raise UnmaskError(f"unknown perturbation {p.kind!r}")
