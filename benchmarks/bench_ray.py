"""`unmask detect` throughput: the local engine vs the Ray engine, 1 and 2 workers, one run.

    python benchmarks/bench_ray.py                      # 300 yonsei JPEGs + the 2 real videos
    python benchmarks/bench_ray.py --n 60 --out work/bench_ray

Needs `unmask[cluster]` and the shared data. Runs, interleaved so that a change in the
machine's load hits both engines alike: local 1 worker, Ray 1 worker, local 2, Ray 2 (the
Ray runs inside one local Ray instance; each run includes its actors' start-up: one face
detector and one model per actor). Reports Ray's start-up (init, first tiny pipeline,
shutdown), files/s and faces/s per run, the model stage alone, the driver's cost per
result, the load average, and checks that every engine gave the same scores. Each run is
preceded by a 2-file run of the same engine and workers: its time is the per-run fixed cost
(actor start-up, model load, first block), and "net files/s" is the rate net of it. With --out,
also bench_ray.json and bench_ray.png. The projection printed at the end is arithmetic on
these measurements, not a measurement of a cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("UNMASK_SHARED_DATA", REPO.parent / "shared" / "data"))


def inputs(n: int, videos: bool) -> list[Path]:
    real = sorted((DATA / "faces" / "yonsei" / "real").glob("*.jpg"))
    edited = sorted((DATA / "faces" / "yonsei" / "edited").glob("*.jpg"))
    if not real:
        sys.exit(f"no JPEGs under {DATA / 'faces' / 'yonsei'} (set UNMASK_SHARED_DATA)")
    files = [f for pair in zip(real, edited, strict=False) for f in pair][:n]
    if videos:
        files += sorted((DATA / "videos" / "real").glob("*.mp4"))
    return files


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.1f} {b:.1f} {c:.1f}"


def summarise(results) -> dict:
    return {
        "files": len(results),
        "faces": sum(len(r["faces"]) for r in results),
        "errors": sum(r["status"] == "error" for r in results),
    }


def timed(results) -> tuple[float, float, list[dict]]:
    """(total s, s to the first result, results as dicts)."""
    t = time.perf_counter()
    first, out = None, []
    for r in results:
        out.append(r.to_dict())
        if first is None:
            first = time.perf_counter() - t
    return time.perf_counter() - t, first or 0.0, out


def run_local(files, predictor, workers, batch_size, frames):
    from unmask.inference.detect import detect_paths

    return timed(
        detect_paths(files, predictor, workers=workers, batch_size=batch_size, frames=frames)
    )


def run_ray(files, model_dir, predictor, workers, batch_size, frames):
    from unmask.cluster.detect import detect_paths_ray
    from unmask.inference import detect as detect_mod
    from unmask.inference.detect import detection_spec

    # the local engine skips face mesh when the model reads no landmarks: so does Ray
    landmarks = getattr(detect_mod, "wants_landmarks", lambda _: True)(predictor)
    return timed(
        detect_paths_ray(
            files,
            model_dir,
            detection_spec(predictor.spec),
            device="cpu",
            workers=workers,
            batch_size=batch_size,
            frames=frames,
            landmarks=landmarks,
        )
    )


def model_rate(predictor, n: int = 64) -> float:
    """Faces/s of the model stage alone (CPU, batches of 32)."""
    import numpy as np

    rng = np.random.default_rng(0)
    size = predictor.spec.crop_size
    crops = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    predictor.predict_proba(crops[:4])
    t = time.perf_counter()
    for i in range(0, n, 32):
        predictor.predict_proba(crops[i : i + 32])
    return n / (time.perf_counter() - t)


def driver_cost(results) -> float:
    """Seconds per file the driver spends on a result: unpickle + to_dict + JSON line."""
    from unmask.inference.detect import FaceResult, FileResult

    objs = [FileResult(**{**r, "faces": [FaceResult(**f) for f in r["faces"]]}) for r in results]
    blob = pickle.dumps(objs)
    t = time.perf_counter()
    for _ in range(5):
        for r in pickle.loads(blob):
            json.dumps(r.to_dict())
    return (time.perf_counter() - t) / (5 * len(objs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="yonsei JPEGs (default 300)")
    ap.add_argument("--no-videos", action="store_true", help="leave out the 2 real videos")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=None, help="write bench_ray.json/.png here")
    args = ap.parse_args()

    from unmask.cluster.session import ray_session
    from unmask.inference.loader import load_predictor
    from unmask.inference.saved_model import default_model_dir

    files = inputs(args.n, not args.no_videos)
    model_dir = default_model_dir()
    predictor = load_predictor(model_dir)
    print(f"{len(files)} files ({args.n} yonsei JPEGs + videos), {os.cpu_count()} cores")
    print(f"load average at start (1/5/15 min): {load()}")
    rows: list[dict] = []
    docs: dict[str, list] = {}

    t = time.perf_counter()
    import ray

    t_import = time.perf_counter() - t
    t = time.perf_counter()
    session = ray_session(num_cpus=3)  # 2 crop actors + the model actor's slot
    session.__enter__()
    t_init = time.perf_counter() - t
    t = time.perf_counter()
    ray.data.from_items([{"x": i} for i in range(4)]).map(lambda r: r).take_all()
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    run_ray(files[:2], model_dir, predictor, 1, args.batch_size, args.frames)
    t_tiny = time.perf_counter() - t
    startup = {
        "import_s": round(t_import, 2),
        "init_s": round(t_init, 2),
        "first_tiny_dataset_s": round(t_first, 2),
        "detect_2_files_s": round(t_tiny, 2),
    }
    print("ray start-up:", json.dumps(startup))

    for workers in (1, 2):
        for engine in ("local", "ray"):
            before = load()
            if engine == "local":
                fixed = run_local(files[:2], predictor, workers, args.batch_size, args.frames)[0]
                dt, first, res = run_local(files, predictor, workers, args.batch_size, args.frames)
            else:
                fixed = run_ray(
                    files[:2], model_dir, predictor, workers, args.batch_size, args.frames
                )[0]
                dt, first, res = run_ray(
                    files, model_dir, predictor, workers, args.batch_size, args.frames
                )
            s = summarise(res)
            row = {
                "engine": engine,
                "workers": workers,
                "seconds": round(dt, 1),
                "files_per_s": round(s["files"] / dt, 2),
                "faces_per_s": round(s["faces"] / dt, 2),
                "first_result_s": round(first, 1),
                # a 2-file run just before: the per-run fixed cost (actors, model, first
                # block); the rate net of it is what more files would see
                "fixed_s": round(fixed, 1),
                "net_files_per_s": round(s["files"] / max(dt - fixed, 1e-9), 2),
                **s,
                "load_before": before,
                "load_after": load(),
            }
            rows.append(row)
            docs[f"{engine}{workers}"] = res
            print(json.dumps(row), flush=True)
    t = time.perf_counter()
    session.__exit__(None, None, None)
    startup["shutdown_s"] = round(time.perf_counter() - t, 2)

    same = all(d == docs["local1"] for d in docs.values())
    m_rate = model_rate(predictor)
    d_cost = driver_cost(docs["ray2"])
    print(f"\nsame results from all four runs: {same}")
    print(f"model stage alone (CPU, batch 32): {m_rate:.1f} faces/s")
    print(f"driver per result (unpickle + JSON): {1e3 * d_cost:.2f} ms")
    print(f"ray start-up: {json.dumps(startup)}")
    hdr = (
        f"{'engine':6} {'workers':>7} {'s':>7} {'files/s':>8} {'faces/s':>8} "
        f"{'1st result s':>12} {'fixed s':>7} {'net files/s':>11}  load before/after"
    )
    print("\n" + hdr)
    for r in rows:
        print(
            f"{r['engine']:6} {r['workers']:>7} {r['seconds']:>7} {r['files_per_s']:>8} "
            f"{r['faces_per_s']:>8} {r['first_result_s']:>12} {r['fixed_s']:>7} {r['net_files_per_s']:>11}  "
            f"{r['load_before']} / {r['load_after']}"
        )
    by = {(r["engine"], r["workers"]): r["files_per_s"] for r in rows}
    print(
        f"\nray/local: 1 worker {by[('ray', 1)] / by[('local', 1)]:.2f}x, "
        f"2 workers {by[('ray', 2)] / by[('local', 2)]:.2f}x; "
        f"2 vs 1 worker: local {by[('local', 2)] / by[('local', 1)]:.2f}x, "
        f"ray {by[('ray', 2)] / by[('ray', 1)]:.2f}x"
    )
    net = {(r["engine"], r["workers"]): r["net_files_per_s"] for r in rows}
    print(
        f"net of the per-run fixed cost: ray/local 1 worker "
        f"{net[('ray', 1)] / net[('local', 1)]:.2f}x, 2 workers "
        f"{net[('ray', 2)] / net[('local', 2)]:.2f}x; 2 vs 1 worker: local "
        f"{net[('local', 2)] / net[('local', 1)]:.2f}x, ray {net[('ray', 2)] / net[('ray', 1)]:.2f}x"
    )
    per_worker = net[("ray", 1)]
    print(
        "\nPROJECTION (arithmetic on the numbers above, not measured on a cluster): "
        f"one crop worker does about {per_worker:.1f} files/s here (net of start-up, on a "
        f"shared, loaded core); a cluster of N nodes x C free cores would do about "
        f"N*C*{per_worker:.1f} files/s plus a fixed ~{rows[1]['fixed_s']:.0f} s per run, while "
        f"the model keeps up "
        f"(one CPU model actor: {m_rate:.0f} faces/s; a GPU actor: far more) and the driver "
        f"keeps up (about {1 / d_cost:.0f} results/s for unpickling + JSON alone, before "
        "printing). Past that, add --model-workers, or write Parquet instead of printing."
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        doc = {
            "rows": rows,
            "startup": startup,
            "same_results": same,
            "model_faces_per_s": round(m_rate, 1),
            "driver_s_per_result": d_cost,
            "files": len(files),
        }
        (args.out / "bench_ray.json").write_text(json.dumps(doc, indent=2) + "\n")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        labels = [f"{r['engine']}\n{r['workers']} worker(s)" for r in rows]
        ax.bar(labels, [r["files_per_s"] for r in rows], color=["C0", "C1", "C0", "C1"])
        ax.set_ylabel("files / s")
        ax.set_title(f"unmask detect, {len(files)} files, 2 shared cores")
        fig.tight_layout()
        fig.savefig(args.out / "bench_ray.png", dpi=120)
        print(f"wrote {args.out / 'bench_ray.json'} and bench_ray.png")


if __name__ == "__main__":
    main()
