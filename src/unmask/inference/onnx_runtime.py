"""Score a saved CNN member with ONNX Runtime on the CPU: same scores, about 2.5x faster.

    runtime = resolve_runtime(None, "cpu")      # --runtime / $UNMASK_RUNTIME / auto -> "onnx"
    scorer = onnx_scorer(model, weights, identity, example)   # torch tensors in and out
    logits = scorer(x)                                        # (N, 3, S, S) -> (N, C)

Why: EfficientNet-Lite0 at 224 px (the shipped blend member, batch 32, one thread) takes
87 ms a face in torch, 44 in torch channels-last (`fast_eval`) and 17.6 in ONNX Runtime's
CPU provider with every graph optimisation, max |logit difference| 2e-6 (issue 21).

The graph is never downloaded and never shipped: it is exported from the network that
`TorchPredictor` rebuilt from the member's own model.json + weights.safetensors, at its
first load, and kept in a cache keyed by the weights' sha256, the detector, the input size
and the unmask version (`cache_dir()`: $UNMASK_CACHE/onnx, else $XDG_CACHE_HOME/unmask/onnx,
else ~/.cache/unmask/onnx). A cached graph is used only if its file is a regular file no
bigger than `size_limit` (4x the weights + 10 MB), its sha256 is the one recorded beside it,
it holds nothing but standard ONNX operators (no custom domain, no local functions, no
tensor data in external files: `check_graph`, a minimal protobuf walk, because the `onnx`
package cannot be installed, see below), and its logits on a fixed input equal the torch
network's. Otherwise it is refused in one line (`UnmaskError`, shown as a warning) and
rebuilt from the weights; a graph that cannot be built or does not match falls back to torch
with a warning. A cache folder that cannot be written leaves the graph in memory.

Exporting without the `onnx` package: `mediapipe==0.10.14` pins protobuf < 5 and current
`onnx` wants protobuf >= 6, so unmask does not depend on it. torch's TorchScript exporter
(`torch.onnx.export(..., dynamo=False)`) serialises the graph in C++ and imports `onnx` only
to append ONNX-script functions for custom operators, which unmask's networks never have;
`_exporter_without_onnx` lets it skip that step (the result is then checked by
`check_graph`, like any cached graph). The torch.export-based exporter needs `onnx` and
`onnxscript` throughout, and is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError

RUNTIMES = ("auto", "onnx", "torch")
ENV_RUNTIME = "UNMASK_RUNTIME"
GRAPH_FORMAT = "unmask-onnx/1"  # bump when the export changes (names, opset, wrapper)
OPSET = 17
INPUT, OUTPUT = "x", "logits"
# A cached graph bigger than this many times the weights (+ slack) is refused unread: the
# graph of a CNN is its weights plus a few hundred kB of nodes.
SIZE_FACTOR, SIZE_SLACK = 4, 10 * 2**20
# Max |ONNX - torch| over the check input's logits, relative to their scale (at least 1):
# float32 rounding differs by ~1e-6; this keeps P(class) within 1e-4 of torch's.
LOGIT_TOL = 1e-4
_STANDARD_DOMAINS = ("", "ai.onnx")
_EXPORT_LOCK = threading.Lock()  # torch's exporter keeps global state; we patch it too

Warn = Callable[[str], None]


# ----------------------------------------------------------------------- choosing a runtime


def requested_runtime(runtime: str | None = None) -> str:
    """The flag's value, else $UNMASK_RUNTIME, else "auto"; one line when unknown."""
    where = "--runtime"
    if runtime is None:
        runtime, where = os.environ.get(ENV_RUNTIME) or "auto", ENV_RUNTIME
    value = runtime.strip().lower()
    if value not in RUNTIMES:
        raise UnmaskError(f"{where} {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    return value


def onnxruntime_installed() -> bool:
    """Without importing it (~0.2 s): the CLI checks flags before any work."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def resolve_runtime(runtime: str | None, device: Any = "cpu") -> str:
    """What scores a model on `device`, "onnx" or "torch": auto is ONNX Runtime on the CPU
    when it is installed, torch otherwise (GPUs run torch). `--runtime onnx` on a GPU or without
    onnxruntime is one line."""
    want = requested_runtime(runtime)
    on_cpu = str(device or "cpu").split(":")[0].strip().lower() == "cpu"
    if want == "torch":
        return "torch"
    if want == "onnx":
        if not on_cpu:
            raise UnmaskError(
                f"--runtime onnx scores on the CPU; with --device {device} use --runtime torch"
            )
        if not onnxruntime_installed():
            raise UnmaskError("--runtime onnx needs ONNX Runtime: pip install onnxruntime")
        return "onnx"
    return "onnx" if on_cpu and onnxruntime_installed() else "torch"


def describe_runtime(predictor: Any) -> str:
    """What scores: "onnx", "torch", per member ("artifact=onnx blend=onnx"), "" (classical)."""
    members = getattr(predictor, "members", None)
    if isinstance(members, dict):
        return " ".join(f"{n}={describe_runtime(p) or 'classical'}" for n, p in members.items())
    return str(getattr(predictor, "runtime", ""))


# ------------------------------------------------------------------------------ the cache


def cache_dir() -> Path:
    """Where exported graphs live (not created here); `detectors.pretrained.cache_dir`'s
    pattern."""
    from unmask.detectors.pretrained import CACHE_ENV

    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unmask" / "onnx"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(weights_sha256: str, identity: dict[str, Any]) -> str:
    """The weights' hash plus what else shapes the graph from the same weights: the
    detector and its options (renormalize adds nodes, not tensors), the input size, the
    class count, unmask's version and the export format."""
    from unmask import __version__

    record = {
        "weights_sha256": weights_sha256,
        "unmask": __version__,
        "format": GRAPH_FORMAT,
        "opset": OPSET,
        **identity,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def size_limit(weights_bytes: int) -> int:
    return SIZE_FACTOR * weights_bytes + SIZE_SLACK


def read_cached(folder: Path, key: str, limit: int) -> bytes | None:
    """The cached graph for `key`, None when there is none; `UnmaskError` when one is
    there but cannot be trusted (a stray file, a broken record, the wrong hash, too big,
    operators outside standard ONNX)."""
    record_path = folder / f"{key}.json"
    if not record_path.exists():
        return None
    try:
        if not stat.S_ISREG(record_path.stat().st_mode) or record_path.stat().st_size > 65536:
            raise UnmaskError(f"{record_path}: cached ONNX record refused (not a small file)")
        record = json.loads(record_path.read_text(encoding="utf-8"))
        digest = str(record["graph_sha256"])
        size = int(record["bytes"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnmaskError(f"{record_path}: cached ONNX record refused ({exc})") from None
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UnmaskError(f"{record_path}: cached ONNX record refused (bad graph_sha256)")
    graph_path = folder / f"{digest}.onnx"
    try:
        st = graph_path.stat()
    except OSError:
        raise UnmaskError(f"{graph_path}: cached ONNX graph missing") from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device is never opened
        raise UnmaskError(f"{graph_path}: cached ONNX graph refused (not a regular file)")
    if st.st_size > limit or st.st_size != size:
        raise UnmaskError(
            f"{graph_path}: cached ONNX graph refused ({st.st_size} bytes; recorded {size}, "
            f"limit {limit})"
        )
    with open(graph_path, "rb") as f:
        graph = f.read(limit + 1)
    if hashlib.sha256(graph).hexdigest() != digest:
        raise UnmaskError(f"{graph_path}: cached ONNX graph refused (sha256 differs from record)")
    check_graph(graph, str(graph_path))
    return graph


def write_cached(folder: Path, key: str, graph: bytes, record: dict[str, Any]) -> bool:
    """Store `graph` content-addressed (<sha256>.onnx) and then its record (<key>.json),
    each written to a temporary file and renamed into place: a reader sees the old record
    or the new one, never half a file, and two processes exporting at once both leave a
    consistent pair. False when the folder cannot be written (the graph stays in memory)."""
    import tempfile

    digest = hashlib.sha256(graph).hexdigest()
    body = json.dumps({**record, "graph_sha256": digest, "bytes": len(graph)}, indent=1)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in ((f"{digest}.onnx", graph), (f"{key}.json", body.encode())):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, folder / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except OSError:
        return False
    return True


# ------------------------------------------------------------- what a graph may contain


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message: ints for varints, a
    zero-copy memoryview for length-delimited fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire in (1, 5):
            value, i = buf[i : i + (8 if wire == 1 else 4)], i + (8 if wire == 1 else 4)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        if i > len(buf):
            raise ValueError("truncated field")
        yield field, wire, value


def _string(value: Any) -> str:
    return bytes(value).decode("utf-8", "replace")


def _check_tensor(buf: memoryview) -> None:
    # TensorProto: external_data = 13, data_location = 14 (1: EXTERNAL). Tensor data in
    # another file would be read from wherever the path points: never.
    for field, _, value in _fields(buf):
        if field == 13 or (field == 14 and value != 0):
            raise ValueError("tensor data in an external file")


def _check_graph(buf: memoryview, depth: int = 0) -> int:
    """Returns the number of nodes; raises ValueError on anything non-standard."""
    if depth > 8:
        raise ValueError("subgraphs nested too deep")
    nodes = 0
    for field, _, value in _fields(buf):
        if field == 1:  # NodeProto
            nodes += 1
            for nf, _, nv in _fields(value):
                if nf == 7 and _string(nv) not in _STANDARD_DOMAINS:  # domain
                    raise ValueError(f"operator domain {_string(nv)!r}")
                if nf == 5:  # AttributeProto
                    for af, _, av in _fields(nv):
                        if af in (5, 10):  # t, tensors
                            _check_tensor(av)
                        elif af in (6, 11):  # g, graphs
                            nodes += _check_graph(av, depth + 1)
                        elif af in (22, 23):  # sparse_tensor(s)
                            raise ValueError("sparse tensor attribute")
        elif field == 5:  # initializer
            _check_tensor(value)
        elif field == 15:
            raise ValueError("sparse initializer")
    return nodes


def check_graph(graph: bytes, where: str = "ONNX graph") -> None:
    """`UnmaskError` unless `graph` is an ONNX ModelProto made of standard operators only:
    every opset import in the default domain, no model-local functions or training info,
    no node in another domain, no tensor stored in an external file. The `onnx` package
    would do this with its checker; it cannot be installed beside mediapipe's protobuf."""
    try:
        view = memoryview(graph)
        has_graph = False
        for field, _, value in _fields(view):
            if field == 8:  # opset_import: OperatorSetIdProto {domain = 1, version = 2}
                for of, _, ov in _fields(value):
                    if of == 1 and _string(ov) not in _STANDARD_DOMAINS:
                        raise ValueError(f"operator set {_string(ov)!r}")
            elif field in (20, 25, 26):  # training_info, functions, configuration
                raise ValueError("functions or training information")
            elif field == 7:
                has_graph = True
                if _check_graph(value) == 0:
                    raise ValueError("no operators")
        if not has_graph:
            raise ValueError("no graph")
    except ValueError as exc:
        raise UnmaskError(f"{where}: refused, not plain ONNX ({exc})") from None


# ----------------------------------------------------------------------- export and run


@contextlib.contextmanager
def _exporter_without_onnx() -> Iterator[None]:
    """torch's TorchScript exporter builds the ModelProto in C++ and then calls
    `_add_onnxscript_fn`, which imports `onnx` to append ONNX-script functions for custom
    operators. Our networks have none: with no custom opsets the step returns the bytes
    unchanged, so it is skipped. If torch moves that function, the export runs as it is
    (and fails without `onnx`, which falls back to torch with a warning)."""
    try:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils as opu

        real = opu._add_onnxscript_fn
    except (ImportError, AttributeError):
        yield
        return

    def passthrough(model_bytes: bytes, custom_opsets: Any) -> bytes:
        if custom_opsets:
            return real(model_bytes, custom_opsets)
        return model_bytes

    opu._add_onnxscript_fn = passthrough
    try:
        yield
    finally:
        opu._add_onnxscript_fn = real


def export_graph(model: Any, example: Any) -> bytes:
    """The eval-mode `model` as an ONNX graph (opset 17, input "x" with a dynamic batch
    axis, output "logits"), traced on `example` (a batch of at least 2, so that no batch
    size of 1 gets baked in)."""
    import io
    import warnings

    import torch

    buf = io.BytesIO()
    with _EXPORT_LOCK, _exporter_without_onnx(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "legacy exporter" deprecation, tracer warnings
        torch.onnx.export(
            model.eval(),
            (example,),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            do_constant_folding=True,
        )
    return buf.getvalue()


_ARENA_LOCK = threading.Lock()
_ARENA: list[bool] = []  # [registered?] once tried


def shared_cpu_arena() -> bool:
    """Register one CPU memory arena in ONNX Runtime's process-wide environment (once),
    for every session of this process to share; False when this onnxruntime cannot."""
    with _ARENA_LOCK:
        if not _ARENA:
            import onnxruntime as ort

            try:
                info = ort.OrtMemoryInfo(
                    "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
                )
                ort.create_and_register_allocator(info, None)
                _ARENA.append(True)
            except Exception:  # an older onnxruntime, or registered by someone else
                _ARENA.append(False)
        return _ARENA[0]


def model_threads() -> int:
    """The model's thread count: torch's when torch is loaded (what `unmask detect` gives
    the model), else what torch would take ($OMP_NUM_THREADS, else every core), without
    importing torch for it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def make_session(graph: bytes, threads: int | None = None) -> Any:
    """An InferenceSession on the CPU provider with every graph optimisation. Intra-op
    threads: torch's thread count (what `unmask detect` gives the model). Its threads
    spin while idle unless OpenMP's passive wait policy is set (`quiet_openmp`, set by
    `unmask detect`): spinning threads take cores the face threads need, as for torch."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(1, int(threads or model_threads()))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: its warnings would land between result rows
    # Its memory arena keeps the largest batch's working memory between runs (Lite0, 32
    # faces at 224 px: ~550 MB resident afterwards; torch gives it back): without the
    # arena a face costs ~2x the CPU, shrinking it after every run ~1.6x. Memory patterns
    # (one pre-planned block per batch shape) add ~200 MB and saved no measurable CPU.
    opts.enable_mem_pattern = False
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0" if passive else "1")
    if shared_cpu_arena():
        # the members run one after another, so one arena sized for the largest batch of
        # any member serves them all (three Lite0 members: 2.25 -> 1.24 GB, same CPU)
        opts.add_session_config_entry("session.use_env_allocators", "1")
    try:
        return ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise UnmaskError(f"ONNX Runtime cannot load the graph ({first})") from None


class OnnxScorer:
    """Calls a session like the torch network: a float tensor batch in, logits out."""

    def __init__(self, session: Any, graph_bytes: int, cached: bool) -> None:
        self.session = session
        self.graph_bytes = graph_bytes
        self.cached = cached  # loaded from the cache (False: exported by this process)
        self.input = session.get_inputs()[0].name
        self.output = session.get_outputs()[0].name

    def __call__(self, x: Any) -> Any:
        import torch

        return torch.from_numpy(self.run(x.detach().cpu().numpy()))

    def run(self, x: Any) -> Any:
        """Logits of a NumPy batch (no torch needed)."""
        import numpy as np

        arr = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run([self.output], {self.input: arr})[0]


def _same_logits(scorer: OnnxScorer, model: Any, example: Any) -> None:
    import torch

    with torch.inference_mode():
        want = model(example).float()
    got = scorer(example)
    scale = max(float(want.abs().max()), 1.0)
    diff = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
    if not diff <= LOGIT_TOL * scale:
        raise UnmaskError(f"ONNX graph's logits differ from torch's by {diff:.2e}")


def graph_identity(saved: Any) -> dict[str, Any]:
    """What, besides the weights, makes a member's graph (a torch-kind `SavedModel`): the
    detector and its options, the class count and the input size (a tile's for tile
    models). Part of the cache key."""
    det, inp = saved.detector, saved.input
    return {
        "detector": det.name,
        "kwargs": det.kwargs,
        "classes": len(saved.classes),
        "input_size": inp.tiles.size if inp.tiles is not None else inp.size,
    }


def cached_scorer(weights: Path, key: str, threads: int | None = None) -> OnnxScorer | None:
    """The cached graph of these weights as a scorer, if there is one that passes the
    file checks (size, sha256 against its record, standard operators only), without the
    network: the graph was checked against torch's logits when it was exported, under a
    key that hashes these very weights. None: nothing cached; raises UnmaskError for a
    cached graph that fails a check. `key`: `cache_key(file_sha256(weights), identity)`."""
    graph = read_cached(cache_dir(), key, size_limit(weights.stat().st_size))
    if graph is None:
        return None
    return OnnxScorer(make_session(graph, threads), len(graph), cached=True)


def onnx_scorer(
    model: Any,
    weights: Path,
    identity: dict[str, Any],
    example: Any,
    warn: Warn,
    threads: int | None = None,
) -> OnnxScorer:
    """An ONNX Runtime scorer for `model` (the eval-mode network rebuilt from `weights`):
    the cached graph when it passes every check, else a new export (cached when the folder
    takes it). Raises when no graph that matches the network can be had; the caller then
    scores with torch."""
    weights_size = weights.stat().st_size
    folder = cache_dir()
    key = cache_key(file_sha256(weights), identity)
    try:
        scorer = cached_scorer(weights, key, threads)
        if scorer is not None:
            # one face is enough here: this graph was traced and checked on the batch of
            # two when it was exported; the torch pass is most of a cached load's time
            _same_logits(scorer, model, example[:1])
            return scorer
    except UnmaskError as exc:
        warn(f"{exc}; rebuilt from {weights}")
    graph = export_graph(model, example)
    check_graph(graph, f"ONNX export of {weights}")
    scorer = OnnxScorer(make_session(graph, threads), len(graph), cached=False)
    _same_logits(scorer, model, example)
    import torch

    from unmask import __version__

    record = {
        "format": GRAPH_FORMAT,
        "weights": str(weights),
        "weights_bytes": weights_size,
        "unmask": __version__,
        "torch": torch.__version__,
        **identity,
    }
    write_cached(folder, key, graph, record)  # False (read-only cache): kept in memory only
    return scorer


def add_runtime_argument(p: Any) -> None:
    """`--runtime {auto,onnx,torch}` for the verbs that take `--device`."""
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="what scores CNN models: onnx (ONNX Runtime, CPU only), torch, or auto (onnx on "
        f"the CPU when onnxruntime is installed, else torch); default ${ENV_RUNTIME} or auto",
    )
