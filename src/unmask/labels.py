"""The label vocabulary shared by every part of unmask.

Three classes: `real`, `gan` (fully synthesised) and `edited` (a real face manipulated).
Binary mode folds `gan` and `edited` into `fake`. Integer ids follow the seed projects:
0 real, 1 gan, 2 edited (binary: 0 real, 1 fake).
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("real", "gan", "edited")
BINARY_CLASSES: tuple[str, ...] = ("real", "fake")
TERNARY_CLASSES: tuple[str, ...] = LABELS


def classes_for(num_classes: int) -> tuple[str, ...]:
    """Class names, in logit order, for a 2- or 3-class detector."""
    if num_classes == 2:
        return BINARY_CLASSES
    if num_classes == 3:
        return TERNARY_CLASSES
    raise ValueError(f"num_classes must be 2 or 3, got {num_classes}")


def label_to_index(label: str, num_classes: int) -> int:
    """Map a manifest label (`real`/`gan`/`edited`) to a class index."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; valid labels: {', '.join(LABELS)}")
    idx = LABELS.index(label)
    return min(idx, 1) if num_classes == 2 else idx
