"""`unmask prepare --engine ray`: the local engine's per-input work on Ray actors.

Each actor holds one FaceCropper (built by `unmask.data.prepare.init_worker`, as a local
worker process does) and runs `unmask.data.prepare.run_chunk` on its share of the tasks:
crops and work records are written by the workers, into the output folder, which on a
multi-node cluster must be on storage every node sees at the same path. The driver only
collects the records and writes the manifest exactly as the local engine does.

A worker that dies mid-task is restarted and the task retried by Ray Data; the task rewrites
the same files (atomic renames) and the records are keyed by input, so no row is lost or
duplicated. A re-run skips inputs whose record is complete, whichever engine wrote it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from unmask.data.spec import PreprocessSpec


class _PrepareActor:
    """One Ray actor: one FaceCropper, reused for every task it is given."""

    def __init__(self, spec_dict: dict[str, Any]) -> None:
        from unmask.data.prepare import init_worker

        init_worker(PreprocessSpec(**spec_dict))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from unmask.data.prepare import run_chunk

        tasks = [json.loads(t) for t in batch["task"]]
        records = run_chunk(tasks)
        return {"record": np.array([json.dumps(r) for r in records], dtype=object)}


def run_tasks_on_ray(
    todo: list[dict[str, Any]],
    spec: PreprocessSpec,
    workers: int,
    progress: bool,
    records: dict[str, dict[str, Any]],
    total: int,
    done: int,
) -> None:
    """Drop-in for `unmask.data.prepare._run_tasks` (the `executor` of `prepare()`); needs
    a running Ray (`unmask.cluster.session.ray_session`)."""
    from ray.data import ActorPoolStrategy, from_items
    from tqdm import tqdm

    from unmask.cluster.session import data_context, one_line_errors

    bar = tqdm(
        total=total,
        initial=done,
        disable=not progress,
        unit="input",
        desc="prepare (ray)",
        dynamic_ncols=True,
        file=sys.stderr,
    )
    try:
        if not todo:
            return
        data_context()
        workers = max(1, min(workers, len(todo)))
        # Blocks of a few tasks: small enough to balance the actors, large enough that
        # Ray's per-block overhead stays small (the local engine's chunk rule).
        chunk = max(1, min(16, len(todo) // (workers * 8) or 1))
        ds = from_items(
            [{"task": json.dumps(t)} for t in todo],
            override_num_blocks=max(1, -(-len(todo) // chunk)),
        )
        ds = ds.map_batches(
            _PrepareActor,
            fn_constructor_args=(dataclasses.asdict(spec),),
            compute=ActorPoolStrategy(size=workers),
            batch_size=1,
            num_cpus=1,
        )
        with one_line_errors("prepare"):
            for row in ds.iter_rows():
                rec = json.loads(row["record"])
                records[rec["uid"]] = rec
                bar.update(1)
    finally:
        bar.close()
