"""Server memory over many `/v1/explain` requests (the Grad-CAM leak of issue 14).

    python benchmarks/bench_explain_memory.py                    # 1,000 requests, shipped model
    python benchmarks/bench_explain_memory.py --requests 300 --every 50 -o work/me/rss.json

Starts `unmask serve`'s app (the shipped model unless --model) in a subprocess on a free
loopback port, POSTs examples/astronaut.jpg (one face) to /v1/explain one request at a time
and reads the server's RSS from /proc/<pid>/status every `--every` requests. A leak shows as
RSS growing with the request count; a fixed server levels off after the first requests.
Prints a table and writes JSON (and a PNG of RSS against requests when matplotlib is there).

Measured (issue 14; shipped model, 300 requests, a 2-core box shared with other jobs):
before the Grad-CAM fix RSS went 1,103.5 -> 1,422.2 MiB from request 25 to 300 (+318.7 MiB,
about 1.19 MiB per request, never levelling off); after it 899.9 -> 898.4 MiB (flat).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test doubles (tests/doubles) ship in no wheel
IMAGE = REPO / "examples" / "astronaut.jpg"


def serve(port: int, model: str | None) -> None:
    import uvicorn

    from unmask.inference.loader import load_predictor
    from unmask.inference.saved_model import default_model_dir
    from unmask.serving.app import create_app

    model_dir = Path(model) if model else default_model_dir()
    app = create_app(load_predictor(model_dir), model_dir=model_dir, timeout_s=600)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100, help="RSS sample interval (requests)")
    ap.add_argument("--model", default=None)
    ap.add_argument("-o", "--out", default="work/bench/explain_memory.json")
    ap.add_argument("--serve-port", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_port:
        serve(args.serve_port, args.model)
        return 0

    import httpx

    from doubles.serving import free_port

    port = free_port()
    cmd = [sys.executable, __file__, "--serve-port", str(port)]
    if args.model:
        cmd += ["--model", args.model]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    data = IMAGE.read_bytes()
    samples: list[tuple[int, float]] = []
    t0 = time.monotonic()
    try:
        with httpx.Client(timeout=600) as c:
            while True:
                try:
                    if c.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if proc.poll() is not None:
                        raise RuntimeError("server exited") from None
                    time.sleep(0.5)
            for i in range(args.requests + 1):
                if i % args.every == 0:
                    samples.append((i, round(rss_mib(proc.pid), 1)))
                    print(f"{i:6d} requests  RSS {samples[-1][1]:8.1f} MiB", flush=True)
                if i == args.requests:
                    break
                r = c.post(f"{url}/v1/explain", files={"file": ("a.jpg", data, "image/jpeg")})
                if r.status_code != 200:
                    raise RuntimeError(f"request {i}: {r.status_code} {r.text[:200]}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    first = samples[1][1] if len(samples) > 1 else samples[0][1]
    result = {
        "requests": args.requests,
        "model": args.model or "shipped",
        "rss_mib": samples,
        "growth_after_first_sample_mib": round(samples[-1][1] - first, 1),
        "per_request_kib": round(
            1024 * (samples[-1][1] - first) / max(samples[-1][0] - args.every, 1), 1
        ),
        "seconds": round(time.monotonic() - t0, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_mib"}))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3), dpi=110)
        ax.plot([s[0] for s in samples], [s[1] for s in samples], marker="o")
        ax.set_xlabel("/v1/explain requests")
        ax.set_ylabel("server RSS (MiB)")
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"))
        plt.close(fig)
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
