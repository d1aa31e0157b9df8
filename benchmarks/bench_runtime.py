"""`unmask detect` on ONNX Runtime against torch, side by side in one run (issue 21).

    python benchmarks/bench_runtime.py                            # yonsei/real, 3 rounds
    python benchmarks/bench_runtime.py --limit 60 --rounds 1      # a quick look
    python benchmarks/bench_runtime.py --model work/models/combo --folder faces/sdfd/gan

Per runtime (`unmask detect --runtime R`, the shipped model unless `--model`), the real
command in a fresh process on the same files (`bench_detect_e2e.run_detect`; rounds
alternate the order):

    e2e img/s      N / wall time of the whole command, start-up included
    start-up s     wall time on one image (imports, model, graphs); the ONNX graphs come
                   from the cache, as on every run but the first
    steady CPU     (CPU_N - CPU_1) / (N - 1) ms per image, user + sys of the process tree
    peak RSS       largest RSS of the process tree
    max |dP|       largest |P(fake) difference| from the first runtime, face by face

then, in this process, per CNN member and runtime: CPU-ms per face on one thread (a batch of
32 faces cut from the folder's first images, median of 3 calls), and the first load that
exports the graphs against a load from the cache. The ONNX cache is a temporary folder
($UNMASK_CACHE), so the first load really exports. Figures depend on the machine and its
load: report them with both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_detect_e2e import DATA, REPO, round_row, run_detect, tree_env  # this folder

RUNTIMES = ("torch", "onnx")


def e2e(env: dict, files: list[str], model: list[str], rounds: int) -> dict:
    rows: dict[str, list[dict]] = {r: [] for r in RUNTIMES}
    scores: dict[str, dict] = {}
    for k in range(rounds):
        for rt in RUNTIMES if k % 2 == 0 else tuple(reversed(RUNTIMES)):
            extra = [*model, "--runtime", rt]
            one = run_detect(env, files[:1], extra)
            full = run_detect(env, files, extra)
            n = len(files)
            if len(full["results"]) != n:
                sys.exit(f"{rt}: {len(full['results'])} results for {n} files")
            scores[rt] = {
                (r["file"], i): f["p_fake"]
                for r in full["results"]
                for i, f in enumerate(r.get("faces") or [])
            }
            row = round_row(one, full, n)
            rows[rt].append(row)
            print(
                f"  round {k + 1} {rt:5s}: {row['e2e']:5.1f} img/s, start-up "
                f"{row['startup']:4.1f} s, CPU {row['cpu']:5.1f} s (steady "
                f"{row['steady_cpu_ms']:5.1f} ms/img), peak RSS {row['rss_mb']:4.0f} MB, "
                f"load {row['load']:.1f}",
                flush=True,
            )
    ref = scores[RUNTIMES[0]]
    med = {rt: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for rt, rs in rows.items()}
    for rt in RUNTIMES:
        common = set(ref) & set(scores[rt])
        med[rt]["faces"] = len(scores[rt])
        med[rt]["max_dp"] = max((abs(ref[k] - scores[rt][k]) for k in common), default=0.0)
    return {"rounds": rows, "medians": med}


def member_cpu(model_dir: Path, files: list[str], batch: int = 32) -> dict:
    """CPU-ms per face of each CNN member on one thread, per runtime, and load times."""
    import torch

    from unmask.data.extract import Face, faces_in_image
    from unmask.data.faces import FaceCropper
    from unmask.data.imageio import load_image
    from unmask.inference.loader import load_predictor

    torch.set_num_threads(1)  # ONNX Runtime sessions take torch's thread count
    probe = load_predictor(model_dir, runtime="torch")
    cropper = FaceCropper(probe.spec)
    faces: list[Face] = []
    for f in files:  # the faces detect makes (stage 1: unmask.data.extract)
        faces += faces_in_image(load_image(f), cropper, probe.needs.tiles, source=f)
        if len(faces) >= batch:
            break
    faces = faces[:batch]
    out: dict = {"faces": len(faces)}
    for rt in RUNTIMES:
        t0 = time.perf_counter()
        pred = load_predictor(model_dir, runtime=rt)  # onnx: exports (empty cache)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_predictor(model_dir, runtime=rt)  # onnx: from the cache
        again = time.perf_counter() - t0
        members = getattr(pred, "members", None) or {"model": pred}
        per = {}
        for name, m in members.items():
            if not hasattr(m, "runtime"):
                continue  # a classical member
            m.predict(faces[:2])  # first call: allocations, kernels
            times = []
            for _ in range(3):
                c0 = time.process_time()
                m.predict(faces)
                times.append(1000 * (time.process_time() - c0) / len(faces))
            per[name] = {"runtime": m.runtime, "cpu_ms_per_face": statistics.median(times)}
        out[rt] = {"first_load_s": first, "cached_load_s": again, "members": per}
        print(
            f"  {rt:5s}: first load {first:4.1f} s, next load {again:4.1f} s; CPU-ms per face "
            "(1 thread): "
            + ", ".join(f"{n} {v['cpu_ms_per_face']:.1f} ({v['runtime']})" for n, v in per.items()),
            flush=True,
        )
    return out


def agreement(env: dict, per_source: int, model: list[str]) -> dict:
    """`unmask detect --runtime torch` against `--runtime onnx` on `per_source` files of
    every source in labels.csv (videos included): largest |P(fake) difference| per source,
    over every face (video frames included)."""
    from bench_stages import files_by_source

    out = {}
    for source, files in files_by_source(per_source, images_only=False).items():
        got = {}
        for rt in RUNTIMES:
            res = run_detect(env, [str(f) for f in files], [*model, "--runtime", rt])
            got[rt] = {
                (r["file"], i): face["p_fake"]
                for r in res["results"]
                for i, face in enumerate(r.get("faces") or [])
            }
        a, b = got[RUNTIMES[0]], got[RUNTIMES[1]]
        if a.keys() != b.keys():
            sys.exit(f"{source}: the runtimes found different faces")
        diff = max((abs(a[k] - b[k]) for k in a), default=0.0)
        out[source] = {"files": len(files), "scores": len(a), "max_dp": diff}
        print(
            f"  {source:18s} {len(files):4d} files {len(a):5d} scores  max |dP| {diff:.1e}",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default="faces/yonsei/real", help="under the shared data")
    ap.add_argument("--limit", type=int, default=0, help="the folder's first N files (0: all)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    ap.add_argument("--json-out", default=None, help="also write the figures here")
    ap.add_argument(
        "--agree",
        type=int,
        default=0,
        metavar="K",
        help="only compare the runtimes' scores on K files of every source (videos included)",
    )
    a = ap.parse_args()
    folder = DATA / a.folder
    if not folder.is_dir():
        sys.exit(f"{folder} not found (set UNMASK_SHARED_DATA)")
    files = sorted(str(p) for p in folder.iterdir() if p.is_file())
    files = files[: a.limit] if a.limit else files
    with tempfile.TemporaryDirectory(prefix="bench_runtime_") as cache:
        os.environ["UNMASK_CACHE"] = cache  # the children inherit it
        env = tree_env(REPO / "src")
        from unmask.inference.saved_model import default_model_dir

        model_dir = Path(a.model) if a.model else default_model_dir()
        if a.agree:
            print(f"torch against ONNX Runtime, {a.agree} files of every source:")
            out = agreement(env, a.agree, ["--model", str(model_dir)])
            if a.json_out:
                Path(a.json_out).write_text(json.dumps(out, indent=1))
            return
        print(
            f"{len(files)} files from {folder}; model {model_dir}; {os.cpu_count()} CPUs; "
            f"load {os.getloadavg()}",
            flush=True,
        )
        print("per member, in this process (empty ONNX cache):")
        members = member_cpu(model_dir, files)
        print("unmask detect end to end (ONNX graphs cached by now):")
        model = ["--model", str(model_dir)]
        speed = e2e(env, [str(f) for f in files], model, a.rounds)
    print(f"\nmedians over {a.rounds} round(s), {len(files)} files:")
    print(
        f"  {'':5s} {'e2e img/s':>9s} {'start-up s':>10s} {'steady CPU ms/img':>17s} "
        f"{'peak RSS MB':>11s} {'faces':>5s} {'max |dP|':>9s}"
    )
    for rt, m in speed["medians"].items():
        print(
            f"  {rt:5s} {m['e2e']:9.1f} {m['startup']:10.1f} {m['steady_cpu_ms']:17.1f} "
            f"{m['rss_mb']:11.0f} {m['faces']:5d} {m['max_dp']:9.1e}"
        )
    t, o = speed["medians"]["torch"], speed["medians"]["onnx"]
    print(f"  onnx/torch: e2e {o['e2e'] / t['e2e']:.2f}x")
    if a.json_out:
        out = {"files": len(files), "folder": str(folder), "members": members, **speed}
        Path(a.json_out).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
