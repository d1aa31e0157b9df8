"""The label vocabulary shared by every part of unmask.

Three classes: `real`, `gan` (fully synthesised) and `edited` (a real face manipulated).
Binary mode folds `gan` and `edited` into `fake`. Integer ids follow the seed projects:
0 real, 1 gan, 2 edited (binary: 0 real, 1 fake).

Data from elsewhere often says only that a face is fake, not how it was made (folders
`real/` and `fake/`, or CNNDetection's `0_real/` and `1_fake/`). Such rows carry the label
`fake`: every binary figure counts them as fakes (eval, bench, binary training); a 3-class
model cannot learn from them, since their class is unknown.
"""

from __future__ import annotations

from unmask.errors import UnmaskError

LABELS: tuple[str, ...] = ("real", "gan", "edited")
FAKE_UNKNOWN = "fake"  # a fake of unknown kind (see the module doc)
DATA_LABELS: tuple[str, ...] = (*LABELS, FAKE_UNKNOWN)  # what a manifest or folder may say
BINARY_CLASSES: tuple[str, ...] = ("real", "fake")
TERNARY_CLASSES: tuple[str, ...] = LABELS
# folder names that say the label, as other projects lay their data out
FOLDER_LABELS: dict[str, str] = {
    **{lb: lb for lb in DATA_LABELS},
    "fakes": FAKE_UNKNOWN,
    "reals": "real",
    "0_real": "real",  # CNNDetection / ForenSynths: <generator>/0_real, <generator>/1_fake
    "1_fake": FAKE_UNKNOWN,
}


def folder_label(name: str) -> str | None:
    """The label a folder name stands for (case-insensitive), or None."""
    return FOLDER_LABELS.get(name.lower())


def classes_for(num_classes: int) -> tuple[str, ...]:
    """Class names, in logit order, for a 2- or 3-class detector."""
    if num_classes == 2:
        return BINARY_CLASSES
    if num_classes == 3:
        return TERNARY_CLASSES
    raise ValueError(f"num_classes must be 2 or 3, got {num_classes}")


def label_to_index(label: str, num_classes: int) -> int:
    """Map a manifest label (`real`/`gan`/`edited`, or `fake` for 2 classes) to a class
    index."""
    if label == FAKE_UNKNOWN and num_classes == 2:
        return 1
    if label == FAKE_UNKNOWN:
        raise UnmaskError(
            "rows labelled 'fake' (kind unknown) cannot train a 3-class model: label them "
            "gan or edited, or train with 2 classes"
        )
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; valid labels: {', '.join(DATA_LABELS)}")
    idx = LABELS.index(label)
    return min(idx, 1) if num_classes == 2 else idx
