"""The one place that knows the kinds of saved model: a table kind -> how to load it and
what it can do, so that no caller switches on `model.json`'s "kind".

    pred = load_predictor(model_dir)          # any kind, ready to score
    saved_needs(model_dir)                    # InputNeeds from model.json alone
    predictor_kind(pred).network              # a capability, instead of kind == "torch"

A new kind of model is one entry in `KINDS` (and its predictor module): callers ask for a
capability (`PredictorKind`'s fields), never for a kind by name. The predictor modules are
imported only when a model of their kind is loaded (torch stays out of classical runs), and
none of them imports this module: `CompositePredictor` is handed `load_predictor` to load
its members with, so the import graph has no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError
from unmask.inference.predictor import InputNeeds, Predictor


@dataclass(frozen=True)
class PredictorKind:
    """What one kind of saved model is made from and what it can do."""

    # (model_dir, saved, device, runtime, warn) -> the predictor; imports its module lazily
    load: Callable[[Path, Any, str, str | None, Any], Predictor] | None = None
    # (model_dir, saved) -> what it reads besides the crop, from model.json alone
    needs: Callable[[Path, Any], InputNeeds] = lambda model_dir, saved: InputNeeds()
    member: bool = False  # may be a member of a composite
    has_members: bool = False  # made of member models (`.members`, `saved.fusion`)
    network: bool = False  # scores with one torch network (`.model`): Grad-CAM, summary
    explain: str | None = None  # how a face's score is shown: "gradcam" | "spectrum"
    feature_cache: bool = False  # scores clean crops from cached frequency features


def _load_torch(model_dir: Path, saved: Any, device: str, runtime: str | None, warn: Any):
    from unmask.inference.onnx_runtime import resolve_runtime

    if resolve_runtime(runtime, device) == "onnx" and not saved.input.landmarks:
        from unmask.inference.onnx_predictor import OnnxPredictor

        # its graph already cached: scored without importing torch (~1.6 s of start-up)
        cached = OnnxPredictor.from_cache(model_dir, saved, warn)
        if cached is not None:
            return cached
    from unmask.inference.torch_predictor import TorchPredictor

    return TorchPredictor(model_dir, saved, device=device, runtime=runtime, warn=warn)


def _load_classical(model_dir: Path, saved: Any, device: str, runtime: str | None, warn: Any):
    from unmask.inference.classical_predictor import ClassicalPredictor

    return ClassicalPredictor(model_dir, saved)  # NumPy on the CPU: no device, no runtime


def _load_composite(model_dir: Path, saved: Any, device: str, runtime: str | None, warn: Any):
    from unmask.inference.composite import CompositePredictor

    member = partial(load_predictor, device=device, member=True, runtime=runtime, warn=warn)
    return CompositePredictor(model_dir, saved, load_member=member)


def _network_needs(model_dir: Path, saved: Any) -> InputNeeds:
    assert saved.input is not None  # schema: torch models have an input section
    return InputNeeds.of_input(saved.input)


def _composite_needs(model_dir: Path, saved: Any) -> InputNeeds:
    from unmask.modelfile import member_dir

    assert saved.fusion is not None  # schema: composites have a fusion section
    needs = InputNeeds()
    for m in saved.fusion.members:
        needs = needs | saved_needs(member_dir(model_dir, m.name))
    return needs


KINDS: dict[str, PredictorKind] = {
    "torch": PredictorKind(
        _load_torch,
        _network_needs,
        member=True,
        network=True,
        explain="gradcam",
    ),
    "classical": PredictorKind(  # reads the crop only
        _load_classical, member=True, explain="spectrum", feature_cache=True
    ),
    "composite": PredictorKind(_load_composite, _composite_needs, has_members=True),
}
# A predictor of no known kind (a test stand-in): no capability at all.
_UNKNOWN = PredictorKind()


def predictor_kind(model: Any) -> PredictorKind:
    """The table entry of a predictor (its `meta["kind"]`), a SavedModel (`.kind`) or a
    kind's name; an unknown kind can do nothing beyond scoring."""
    if isinstance(model, str):
        kind = model
    elif isinstance(getattr(model, "meta", None), dict):
        kind = model.meta.get("kind")
    else:
        kind = getattr(model, "kind", None)
    return KINDS.get(kind, _UNKNOWN) if isinstance(kind, str) else _UNKNOWN


def saved_needs(model_dir: str | Path, saved: Any = None) -> InputNeeds:
    """What a saved model reads besides the crop, from model.json alone (members' too);
    `saved`: its already-read SavedModel, if at hand."""
    from unmask.modelfile import read_saved_model

    saved = saved if saved is not None else read_saved_model(model_dir)
    return KINDS[saved.kind].needs(Path(model_dir), saved)


def load_predictor(
    model_dir: str | Path,
    device: str = "cpu",
    member: bool = False,
    runtime: str | None = None,
    warn: Any = None,
) -> Predictor:
    """The saved model in `model_dir`, ready to score. Refuses (one line) before building
    anything: a model.json outside the schema, an unknown builder or option, a backbone
    outside timm's registry, links out of the folder. `runtime` ("auto", "onnx", "torch";
    None: $UNMASK_RUNTIME, else auto) picks what scores CNN members on the CPU
    (`unmask.inference.onnx_runtime`); `warn(msg)` hears about fall-backs to torch.
    `member`: it is loaded as a composite's member (a kind that cannot be one is refused)."""
    from unmask.modelfile import read_saved_model

    saved = read_saved_model(model_dir)
    entry = KINDS[saved.kind]  # the schema admits only the kinds of the table
    if member and not entry.member:
        raise UnmaskError(f"{model_dir}: a composite member cannot itself be a {saved.kind}")
    assert entry.load is not None
    return entry.load(Path(model_dir), saved, device, runtime, warn)
