"""`unmask eval --engine ray`: manifest rows scored on Ray model actors.

The rows are cut into blocks of `batch_size` at the same offsets the local engine's batches
start, and each actor runs the local engine's own `unmask.evaluation.report.score_rows` on
its block (with the perturbation seed shifted by the block's offset), so the probabilities
are identical. Workers read the crops themselves: the manifest folder must be on storage
every node sees at the same path. Metrics, bootstraps and plots stay on the driver.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _ScoreActor:
    def __init__(self, model, device, threshold) -> None:
        import ray

        from unmask.cluster.models import load_shipped

        files = ray.get(model) if isinstance(model, ray.ObjectRef) else model
        self.predictor = load_shipped(files, device, threshold)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from unmask.evaluation.report import score_rows

        out = []
        for blob in batch["job"]:
            job = pickle.loads(blob)
            proba = score_rows(
                self.predictor,
                job["rows"],
                job["perturbation"],
                None,
                job["batch_size"],
                job["seed"],
                False,
                job["feature_cache"],
            )
            out.append(pickle.dumps(np.asarray(proba), protocol=pickle.HIGHEST_PROTOCOL))
        return {"block": batch["block"], "proba": np.array(out, dtype=object)}


def ray_scorer(
    model_dir: str | Path, device: str | None = None, workers: int = 2
) -> Callable[..., Any]:
    """A drop-in for `score_rows` (the `score_fn` of `evaluate`) that scores on Ray.
    Needs a running Ray; the model is shipped to the object store once."""
    from unmask.cluster.detect import model_placement
    from unmask.cluster.models import ship_model

    device, gpus = model_placement(device)
    model_ref = ship_model(model_dir)

    def score(
        predictor,
        df,
        perturbation,
        crops=None,
        batch_size: int = 64,
        seed: int = 0,
        progress: bool = True,
        feature_cache=None,
    ):
        import numpy as np
        from ray.data import ActorPoolStrategy, from_items
        from tqdm import tqdm

        from unmask.cluster.session import data_context, one_line_errors

        n = len(df)
        if n == 0:
            return np.zeros((0, len(predictor.classes)))
        data_context()
        jobs = []
        for k, start in enumerate(range(0, n, batch_size)):
            job = {
                "rows": df.iloc[start : start + batch_size].reset_index(drop=True),
                "perturbation": perturbation,
                "batch_size": batch_size,
                "seed": seed + start,  # the local engine's seed for these rows
                "feature_cache": str(feature_cache) if feature_cache else None,
            }
            jobs.append({"block": k, "job": pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)})
        ds = from_items(jobs, override_num_blocks=len(jobs))
        ds = ds.map_batches(
            _ScoreActor,
            fn_constructor_args=(model_ref, device, float(predictor.threshold)),
            compute=ActorPoolStrategy(size=max(1, min(workers, len(jobs)))),
            batch_size=1,
            num_cpus=0 if gpus else 1,
            num_gpus=gpus,
        )
        bar = tqdm(
            total=n, desc=f"score {perturbation.name} (ray)", unit="img", disable=not progress
        )
        parts = []
        with one_line_errors("eval"):
            for expected, row in enumerate(ds.iter_rows()):
                if int(row["block"]) != expected:
                    raise RuntimeError(f"Ray returned block {row['block']} before {expected}")
                parts.append(pickle.loads(row["proba"]))
                bar.update(len(parts[-1]))
        bar.close()
        return np.concatenate(parts)

    return score
