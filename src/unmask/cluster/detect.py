"""`unmask detect --engine ray`: the local engine's two stages on Ray actor pools.

    blocks of `batch_size` files (input order)
      -> [CPU actors: one FaceCropper each; unmask.inference.detect.extract_for_detect
          per file, i.e. unmask.data.extract.extract_file]
      -> [model actors: the saved model, once per actor; unmask.inference.detect.score_block]
      -> FileResults, streamed back in input order

`detect_paths` batches the model exactly by these blocks too, so the scores are identical.
Items travel between stages as Python objects in object columns, serialised by Ray's own
transport between our own processes (crops are numpy arrays, cells wrapped in `Carried`);
unmask itself never unpickles anything, and nothing is read back from a file. Model actors
take a GPU each when the cluster has GPUs (device "auto") and `model_workers` of them run
side by side.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from unmask.data.spec import PreprocessSpec


class _ExtractActor:
    """Stage 1: decode + face detection + crop, one FaceCropper per actor, reused."""

    def __init__(
        self,
        spec_dict: dict[str, Any],
        every: int,
        frames: int,
        landmarks: bool,
        tiles: Sequence[dict[str, Any]] = (),
    ):
        from unmask.data.extract import init_worker
        from unmask.data.tiles import TileSpec

        # native-pixel members: their tiles are cut here, from the decoded image (the
        # image itself never leaves the actor), exactly as the local engine's threads do
        self.tiles = tuple(TileSpec(**t) for t in tiles)
        # landmarks=False: no face mesh (the model reads none); same boxes and crops
        init_worker(PreprocessSpec(**spec_dict), landmarks)
        self.every, self.frames = every, frames

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from unmask.inference.detect import extract_for_detect

        items = [
            [
                extract_for_detect(Path(f), self.every, self.frames, tiles=self.tiles)
                for f in json.loads(files)
            ]
            for files in batch["files"]
        ]
        return {"block": batch["block"], "items": object_column(items)}


class _ModelActor:
    """Stage 2: the model, loaded once per actor from the shipped folder."""

    def __init__(self, model, device, threshold, batch_size, keep_crops, runtime=None) -> None:
        import ray

        from unmask.cluster.models import load_shipped

        files = ray.get(model) if isinstance(model, ray.ObjectRef) else model
        self.predictor = load_shipped(files, device, threshold, runtime)
        self.batch_size, self.keep_crops = batch_size, keep_crops

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:

        from unmask.inference.detect import score_block

        out = [
            score_block(items.value, self.predictor, self.batch_size, self.keep_crops)
            for items in batch["items"]
        ]
        return {"block": batch["block"], "results": object_column(out)}


class Carried:
    """One opaque cell: Ray Data would otherwise turn lists of dicts into Arrow structs (and
    back with every dict given every key), so a block travels wrapped, as a Python object
    that Ray's own transport serialises between our processes."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getstate__(self) -> Any:
        return self.value

    def __setstate__(self, value: Any) -> None:
        self.value = value


def object_column(values: list[Any]) -> Any:
    """A 1-D object array of `Carried` cells, one per value."""
    import numpy as np

    col = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        col[i] = Carried(v)
    return col


def model_placement(device: str | None) -> tuple[str, float]:
    """(device for the model actors, GPUs per actor): "auto"/None -> cuda when the cluster
    has GPUs, else cpu."""
    from unmask.cluster.session import cluster_gpus

    if device in (None, "auto"):
        device = "cuda" if cluster_gpus() > 0 else "cpu"
    return device, (1.0 if device.startswith("cuda") else 0.0)


@dataclasses.dataclass(frozen=True)
class RayDetectOptions:
    """What `detect_paths_ray` and `detect_to_parquet_shards` take besides the files, the
    model and the spec. `model_cpus`: CPU slots a CPU model actor claims (0: like the local
    engine's main process, it shares the cores with the crop workers). `landmarks`: whether
    the model reads face-mesh landmarks (`unmask.inference.detect.wants_landmarks`).
    `tiles`: the TileSpecs of the model's native-pixel members (`predictor.needs.tiles`).
    `runtime`: what scores CNN members in the model actors ("auto", "onnx", "torch"; None:
    $UNMASK_RUNTIME where they run, else auto), as `--runtime` does locally."""

    device: str | None = None
    threshold: float | None = None
    every: int = 0
    frames: int = 16
    workers: int = 2
    model_workers: int = 1
    batch_size: int = 32
    keep_crops: bool = False
    model_cpus: float = 0.0
    landmarks: bool = True
    tiles: tuple[Any, ...] = ()
    runtime: str | None = None


def detect_paths_ray(
    files: Sequence[str | Path], model_dir: str | Path, spec: PreprocessSpec, **options: Any
) -> Iterator[Any]:
    """One FileResult per file, in input order (`files` already expanded; `spec` the
    detection spec, `unmask.inference.detect.detection_spec`; `options`: the fields of
    `RayDetectOptions`). Needs a running Ray."""
    files = [str(f) for f in files]
    if not files:
        return
    ds = _pipeline(files, model_dir, spec, RayDetectOptions(**options))
    from unmask.cluster.session import one_line_errors

    with one_line_errors("detect"):
        for expected, row in enumerate(ds.iter_rows()):
            if int(row["block"]) != expected:  # preserve_order is a promise: check it
                raise RuntimeError(f"Ray returned block {row['block']} before {expected}")
            yield from row["results"].value


def _pipeline(files, model_dir, spec, o: RayDetectOptions):
    """The Ray Data plan: rows are blocks of files -> extracted items -> results."""
    from ray.data import ActorPoolStrategy, from_items

    from unmask.cluster.models import ship_model
    from unmask.cluster.session import data_context

    data_context()
    device, gpus = model_placement(o.device)
    blocks = [files[i : i + o.batch_size] for i in range(0, len(files), o.batch_size)]
    ds = from_items(
        [{"block": k, "files": json.dumps(b)} for k, b in enumerate(blocks)],
        override_num_blocks=len(blocks),
    )
    ds = ds.map_batches(
        _ExtractActor,
        fn_constructor_args=(
            dataclasses.asdict(spec),
            o.every,
            o.frames,
            o.landmarks,
            [dataclasses.asdict(t) for t in o.tiles],
        ),
        compute=ActorPoolStrategy(size=max(1, min(o.workers, len(blocks)))),
        batch_size=1,
        num_cpus=1,
    )
    model = (ship_model(model_dir), device, o.threshold, o.batch_size, o.keep_crops, o.runtime)
    ds = ds.map_batches(
        _ModelActor,
        fn_constructor_args=model,
        compute=ActorPoolStrategy(size=max(1, o.model_workers)),
        batch_size=1,
        num_cpus=0 if gpus else o.model_cpus,
        num_gpus=gpus,
    )
    return ds


class _FaceRows:
    """FileResults -> the per-face table's rows (cells as text, like the CSV)."""

    def __init__(self, classes: Sequence[str]) -> None:
        from unmask.inference.report import face_csv_columns

        self.classes = list(classes)
        self.columns = list(dict.fromkeys(face_csv_columns(self.classes)))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from unmask.inference.report import face_rows

        rows = [
            r
            for results in batch["results"]
            for res in results.value
            for r in face_rows(res, self.classes)
        ]
        cells = lambda v: "" if v is None else str(v)  # noqa: E731
        return {
            c: np.array([cells(r.get(c, "")) for r in rows], dtype=object) for c in self.columns
        }


def detect_to_parquet_shards(
    files: Sequence[str | Path],
    model_dir: str | Path,
    spec: PreprocessSpec,
    out_dir: str | Path,
    classes: Sequence[str],
    **options: Any,
) -> Path:
    """Like `detect_paths_ray`, but the per-face rows are written by the workers as Parquet
    shards under `out_dir` (one file per block; the `file` column says which input) and
    nothing flows back through the driver. `options`: the fields of `RayDetectOptions`.
    Read them back with `unmask.data.tables.read_table(out_dir)`."""
    from ray.data import ActorPoolStrategy

    from unmask.cluster.session import data_context

    files = [str(f) for f in files]
    data_context()
    ds = _pipeline(files, model_dir, spec, RayDetectOptions(**{**options, "keep_crops": False}))
    ds = ds.map_batches(
        _FaceRows,
        fn_constructor_args=(list(classes),),
        compute=ActorPoolStrategy(size=1),
        batch_size=1,
        num_cpus=0,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from unmask.cluster.session import one_line_errors

    with one_line_errors("detect"):
        ds.write_parquet(str(out))
    return out
