"""`unmask eval --engine ray`: manifest rows scored on a pool of Ray model actors.

The rows are cut into blocks of `batch_size` at the same offsets the local engine's batches
start, and each actor runs the local engine's own `unmask.evaluation.report.score_rows` on
its block (with the perturbation seed shifted by the block's offset), so the probabilities
are identical. The actors load the model once and serve every perturbation of the run
(a sweep such as `--perturb jpeg:90,70,50 blur:1,2` pays the start-up once). Workers read
the crops themselves: the manifest folder must be on storage every node sees at the same
path. Metrics, bootstraps and plots stay on the driver. A killed actor is restarted and its
block retried (max_restarts / max_task_retries), and results are collected in block order,
so no row is lost or counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


class _ScoreActor:
    def __init__(self, model, device, threshold, runtime=None) -> None:
        import ray

        from unmask.cluster.models import load_shipped

        files = ray.get(model) if isinstance(model, ray.ObjectRef) else model
        self.predictor = load_shipped(files, device, threshold, runtime)

    def score(self, job: dict[str, Any]):
        """`Scores` of one block: P per class and, for composites, the driving member."""
        import numpy as np

        from unmask.evaluation.perturb import NONE
        from unmask.evaluation.scoring import score_row_faces, score_rows, uses_feature_cache
        from unmask.inference.predictor import Scores

        rows, p, bs, seed = job["rows"], job["perturbation"], job["batch_size"], job["seed"]
        if not (p == NONE and uses_feature_cache(self.predictor)):  # as `evaluate` decides
            return score_row_faces(self.predictor, rows, p, None, bs, seed, False)
        proba = score_rows(self.predictor, rows, p, None, bs, seed, False, job["feature_cache"])
        return Scores(np.asarray(proba), [None] * len(rows))


def ray_scorer(
    model_dir: str | Path,
    device: str | None = None,
    workers: int = 2,
    runtime: str | None = None,
) -> Callable[..., Any]:
    """The `score_fn` of `evaluate`: scores on Ray and returns `Scores` (proba + driver).
    Needs a running Ray session; the model is shipped to the object store once and the
    actors are started on the first call. `runtime`: what scores CNN members in the actors
    (`unmask.inference.loader.load_predictor`)."""
    from unmask.cluster.detect import model_placement
    from unmask.cluster.models import ship_model

    device, gpus = model_placement(device)
    model_ref = ship_model(model_dir)
    pool: list[Any] = []

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
        import ray
        from ray.util import ActorPool
        from tqdm import tqdm

        from unmask.cluster.session import one_line_errors
        from unmask.inference.predictor import Scores

        n = len(df)
        if n == 0:
            return Scores(np.zeros((0, len(predictor.classes))), [])
        if not pool:
            actor = ray.remote(
                num_cpus=0 if gpus else 1, num_gpus=gpus, max_restarts=-1, max_task_retries=-1
            )(_ScoreActor)
            threshold = float(predictor.threshold)
            pool.append(
                ActorPool(
                    [
                        actor.remote(model_ref, device, threshold, runtime)
                        for _ in range(max(1, workers))
                    ]
                )
            )
        jobs = [
            {
                "rows": df.iloc[start : start + batch_size].reset_index(drop=True),
                "perturbation": perturbation,
                "batch_size": batch_size,
                "seed": seed + start,  # the local engine's seed for these rows
                "feature_cache": str(feature_cache) if feature_cache else None,
            }
            for start in range(0, n, batch_size)
        ]
        bar = tqdm(
            total=n, desc=f"score {perturbation.name} (ray)", unit="img", disable=not progress
        )
        parts = []
        with one_line_errors("eval"):
            for scored in pool[0].map(lambda a, job: a.score.remote(job), jobs):  # in order
                parts.append(scored)
                bar.update(len(scored.driver))
        bar.close()
        return Scores(
            np.concatenate([s.proba for s in parts]), [d for s in parts for d in s.driver]
        )

    return score
