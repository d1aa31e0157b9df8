"""Throughput, latency and memory of `unmask serve` on loopback.

    python benchmarks/bench_serve.py                       # 1, 4, 8 clients; RSS 100 vs 1000
    python benchmarks/bench_serve.py --standin             # stand-in model (no weights)
    python benchmarks/bench_serve.py --requests 400 --concurrency 1 2 4 8 16 --threads 2

Starts the server in a subprocess on a free 127.0.0.1 port (the shipped model by default,
`--model DIR` for another, `--standin` for the brightness stand-in that measures the service
without a model), then POSTs examples/astronaut.jpg (512x512, one face) to /v1/detect:

- for each client count: requests/second and p50/p95/p99 latency over `--requests`
  requests after a warm-up, every response checked (200, one face);
- memory: the server's RSS (from /proc) after 100 and after 1000 requests; a leak shows as
  growth proportional to the request count.

Everything is bounded: `--time-limit` seconds in all, then the server is killed. The client
runs on the same machine, so on a 2-core box it competes with the server for CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test doubles (tests/doubles) ship in no wheel
IMAGE = REPO / "examples" / "astronaut.jpg"


# ---------------------------------------------------------------- server side (subprocess)


def serve(port: int, model: str | None, standin: bool, threads: int) -> None:
    import uvicorn

    from unmask.serving.app import create_app

    if standin:
        from doubles.serving import BrightnessPredictor

        predictor, model_dir = BrightnessPredictor(), None
    else:
        from unmask.inference.loader import load_predictor
        from unmask.inference.saved_model import default_model_dir

        model_dir = Path(model) if model else default_model_dir()
        predictor = load_predictor(model_dir)
    app = create_app(predictor, model_dir=model_dir, threads=threads, max_queue=256)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- client side


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fire(client, data: bytes, n: int, concurrency: int) -> tuple[float, list[float]]:
    """`n` requests with `concurrency` in flight; (wall seconds, per-request latencies)."""
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def one() -> None:
        async with sem:
            t0 = time.perf_counter()
            r = await client.post("/v1/detect", files={"file": ("astronaut.jpg", data)})
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200 or len(r.json()["result"]["faces"]) != 1:
                raise RuntimeError(f"bad response {r.status_code}: {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - t0, lat


async def bench(url: str, pid: int, args) -> None:
    import httpx
    import numpy as np

    data = IMAGE.read_bytes()
    limits = httpx.Limits(max_connections=max(args.concurrency) + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        model = (await client.get("/v1/models")).json()["models"][0]
        print(
            f"model: {model['id']} ({model['detector']}); image {IMAGE.name} (1 face); "
            f"server threads {args.threads}; {os.cpu_count()} CPU cores shared with the client"
        )
        await fire(client, data, 10, 2)  # warm-up: MediaPipe graphs, first model call
        print(
            f"\n{'clients':>7}  {'requests':>8}  {'req/s':>7}  {'p50 ms':>7}  {'p95 ms':>7}  "
            f"{'p99 ms':>7}"
        )
        for c in args.concurrency:
            wall, lat = await fire(client, data, args.requests, c)
            p50, p95, p99 = (1000 * np.percentile(lat, q) for q in (50, 95, 99))
            print(
                f"{c:>7}  {args.requests:>8}  {args.requests / wall:>7.1f}  {p50:>7.1f}  "
                f"{p95:>7.1f}  {p99:>7.1f}",
                flush=True,
            )
        if args.memory:
            lo, hi = args.memory
            done = int((await client.get("/healthz")).json()["served"])
            print(f"\nmemory (server RSS, {args.memory_concurrency} clients):")
            start = rss_mib(pid)
            print(f"  before (after {done} warm-up/speed requests): {start:7.1f} MiB")
            marks = {}
            for mark in (lo, hi):
                await fire(client, data, mark - (lo if mark == hi else 0), args.memory_concurrency)
                marks[mark] = rss_mib(pid)
                print(f"  after {mark:>5} requests: {marks[mark]:7.1f} MiB", flush=True)
            grow = marks[hi] - marks[lo]
            per_req = 1024 * grow / max(hi - lo, 1)
            print(f"  {lo} -> {hi} requests: {grow:+.1f} MiB ({per_req:+.2f} KiB/request)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="saved model (default: the shipped model)")
    ap.add_argument(
        "--standin", action="store_true", help="serve the brightness stand-in instead of a model"
    )
    ap.add_argument("--requests", type=int, default=200, help="requests per client count")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--threads", type=int, default=1, help="server inference threads")
    ap.add_argument(
        "--memory",
        type=int,
        nargs=2,
        default=[100, 1000],
        metavar=("N1", "N2"),
        help="RSS after N1 and after N2 requests (0 0 to skip)",
    )
    ap.add_argument("--memory-concurrency", type=int, default=4)
    ap.add_argument("--time-limit", type=float, default=600, help="seconds, all included")
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)  # internal
    args = ap.parse_args()
    if args.memory == [0, 0]:
        args.memory = None
    if args.serve:
        serve(args.serve, args.model, args.standin, args.threads)
        return

    from doubles.serving import free_port
    from unmask.inference.saved_model import MODEL_JSON, default_model_dir

    if not args.standin and not args.model and not (default_model_dir() / MODEL_JSON).is_file():
        print("no shipped model yet: benchmarking the stand-in (--standin)", file=sys.stderr)
        args.standin = True
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(port), "--threads", str(args.threads)]
    cmd += ["--standin"] if args.standin else (["--model", args.model] if args.model else [])
    server = subprocess.Popen(cmd, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        t_end = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                sys.exit(f"server exited with {server.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > t_end:
                sys.exit("server did not start within 120 s")
            time.sleep(0.2)
        asyncio.run(asyncio.wait_for(bench(url, server.pid, args), args.time_limit))
    except asyncio.TimeoutError:
        sys.exit(f"benchmark stopped at --time-limit {args.time_limit:g} s")
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
