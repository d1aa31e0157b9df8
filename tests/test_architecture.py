"""Architecture rules the code review keeps asking for, checked on the source itself:

* only the loader (`unmask.inference.loader`, its table of predictor kinds), the detector
  registry, the training dispatch table and the model-file schema may switch on a saved
  model's kind or a detector's family; everyone else asks for a capability
  (`predictor_kind(p).network`, `.has_members`, ...), so a new family of models touches
  its own modules and one table entry, not every caller;
* the import graph of `unmask` has no cycle (function-level imports count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "unmask"

# The places whose job is to know kinds and families.
MAY_SWITCH = (
    "modelfile/",  # the schema: which kinds exist and what each must hold
    "inference/loader.py",  # kind -> predictor and its capabilities
    "detectors/registry.py",  # detector -> family
    "training/run.py",  # family -> trainer
)
# `kind`s and `family`s that are not a model's: perturbations, media, frequency features,
# artifact front ends, synthetic fakes, up-samplers, colour jitter, provenance hints,
# C2PA errors, devices, NumPy dtype kinds, spectrum groups.
UNRELATED = {
    "none", "jpeg", "blur", "resize", "noise",
    "image", "video", "unknown",
    "spectrum", "dct",
    "npr", "srm", "bayar", "rgb",
    "upsample", "upsample_trace",
    "transposed", "nearest", "bilinear",
    "rgb_shift", "hsv", "brightness_contrast", "ds",
    "generator", "editor", "source_type", "camera", "c2pa_remote", "NotSupported",
    "cpu", "cuda", "mps",
    "f", "i", "u", "b",
    "label", "source",
}  # fmt: skip
# What a model's kind or a detector's family is called (model.json "kind", registry family).
MODEL_KINDS = {"torch", "classical", "composite", "cnn"}
NAMES = {"kind", "family"}


def _is_kind_access(node: ast.AST) -> bool:
    """`x.kind`, `x["kind"]`, `x.get("kind")`, or a variable called kind / family."""
    if isinstance(node, ast.Attribute):
        return node.attr in NAMES
    if isinstance(node, ast.Name):
        return node.id in NAMES
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value in NAMES
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        first = node.args[0] if node.args else None
        return node.func.attr == "get" and isinstance(first, ast.Constant) and first.value in NAMES
    return False


def _strings(node: ast.AST) -> set[str] | None:
    """The string constants a comparison is against ("x" or ("x", "y")), None otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        values = [_strings(e) for e in node.elts]
        if values and all(v is not None for v in values):
            return set().union(*values)  # type: ignore[arg-type]
    return None


def kind_switches(source: str) -> list[tuple[int, str]]:
    """(line, code) of every switch on a model's kind or family in `source`: a comparison of
    a kind/family against strings other than the known unrelated kinds, or a dict keyed
    by model kinds (`{"torch": ..., "classical": ...}.get(kind)`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_kind_access(s) for s in sides):
                consts = set().union(*(_strings(s) or set() for s in sides))
                if consts - UNRELATED:
                    found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if len(keys & MODEL_KINDS) >= 2:
                found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_the_scanner_sees_every_form_of_switch():
    """Each form the code once had (issue 22) is caught; unrelated kinds are not."""
    caught = [
        'is_cnn = predictor.meta.get("kind") == "torch"',
        'if saved.kind != "composite": pass',
        'if meta["kind"] in ("torch", "classical"): pass',
        'if info.family != "classical": pass',
        'family = info.family\nif family == "cnn": pass',
        'x = {"torch": "gradcam", "classical": "spectrum"}.get(kind)',
    ]
    for code in caught:
        assert kind_switches(code), code
    for code in ('if p.kind == "jpeg": pass', 'if res.kind == "video": pass', "x = a == b"):
        assert not kind_switches(code), code


def _checked_files() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the tree was found
    rel = [(p, p.relative_to(SRC).as_posix()) for p in files]
    return [p for p, r in rel if not r.startswith(MAY_SWITCH)]


def test_no_model_kind_switch_outside_the_loader_and_registries():
    bad = [
        f"{p.relative_to(SRC)}:{line}: {code}"
        for p in _checked_files()
        for line, code in kind_switches(p.read_text(encoding="utf-8"))
    ]
    assert not bad, "switch on a model kind/family; ask a capability instead:\n" + "\n".join(bad)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_cycle_finder_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_of_unmask_has_no_cycle():
    grimp = pytest.importorskip("grimp")  # installed with import-linter (dev extra)
    g = grimp.build_graph("unmask")
    graph = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    assert graph["unmask.inference.loader"]  # the graph holds the package's imports
    assert import_cycles(graph) == []


def test_the_loader_table_has_every_kind_the_schema_admits():
    """A kind model.json may hold but the loader does not know would fail at load time."""
    import typing

    from unmask.inference.loader import KINDS, predictor_kind
    from unmask.modelfile.schema import SavedModel

    kinds = set(typing.get_args(typing.get_type_hints(SavedModel)["kind"]))
    assert kinds == set(KINDS)
    assert all(KINDS[k].load is not None for k in kinds)
    # the capabilities callers ask for, as the kinds had them when callers switched on names
    assert [k for k in KINDS if KINDS[k].network] == ["torch"]
    assert [k for k in KINDS if KINDS[k].has_members] == ["composite"]
    assert [k for k in KINDS if not KINDS[k].member] == ["composite"]
    assert predictor_kind("classical").feature_cache
    assert predictor_kind("standin") == predictor_kind(object())  # a stand-in: nothing
    assert not predictor_kind("standin").network and predictor_kind("standin").explain is None


def test_a_new_detector_module_needs_no_list():
    """Every module of `unmask.detectors` is imported for registration (a new detector
    touches one file), except the registry and the protocol; the classical ones only when
    asked for (scikit-learn stays out of a CNN model's start-up)."""
    from pathlib import Path

    from unmask.detectors import registry

    folder = Path(registry.__file__).parent
    on_disk = {f"unmask.detectors.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    found = registry._detector_modules()
    assert set(found) == on_disk - {"unmask.detectors.registry", "unmask.detectors.protocol"}
    assert {"unmask.detectors.cnn", "unmask.detectors.artifact"} <= set(found)
    assert set(found) >= registry._CLASSICAL_MODULES
