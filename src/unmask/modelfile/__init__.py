"""The saved-model folder: one format for every detector, loaded without running code.

    MODEL_DIR/
      model.json            the `SavedModel` schema (unmask.modelfile.schema): kind, detector
                            builder + options, classes, preprocessing (crop spec; for CNNs the
                            input size/normalisation and an optional native-pixel TileSpec),
                            threshold + rule, informational metrics/training record
      weights.safetensors   tensors (kind "torch": state dict; "classical": pipeline arrays)
      members/<name>/       kind "composite": each member a complete model folder
      card.md               optional human-readable model card

`read_saved_model` is the only reader, `write_saved_model` the only writer (both families
and composites). Format 1 folders (`unmask-model/1`) are migrated on read.
"""

from unmask.modelfile.io import (
    CARD_FILE,
    MEMBERS_DIR,
    MODEL_JSON,
    WEIGHTS_FILE,
    inside,
    member_dir,
    migrate_v1,
    model_to_json,
    new_saved_model,
    parse_saved_model,
    read_saved_model,
    weights_path,
    write_saved_model,
)
from unmask.modelfile.schema import (
    MODEL_FORMAT,
    ClassicalHead,
    CnnInput,
    DetectorRef,
    FeatureInput,
    Fusion,
    FusionMember,
    SavedModel,
)

__all__ = [
    "CARD_FILE",
    "MEMBERS_DIR",
    "MODEL_FORMAT",
    "MODEL_JSON",
    "WEIGHTS_FILE",
    "ClassicalHead",
    "CnnInput",
    "DetectorRef",
    "FeatureInput",
    "Fusion",
    "FusionMember",
    "SavedModel",
    "default_model_dir",
    "inside",
    "member_dir",
    "migrate_v1",
    "model_to_json",
    "new_saved_model",
    "parse_saved_model",
    "read_saved_model",
    "weights_path",
    "write_saved_model",
]


def default_model_dir():
    """The small model that ships inside the package (see its model card)."""
    from importlib.resources import files
    from pathlib import Path

    return Path(str(files("unmask") / "assets" / "default_model"))
