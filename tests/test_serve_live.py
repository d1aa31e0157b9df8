"""`unmask serve` over real loopback sockets (uvicorn in a thread): the event loop stays
responsive while the model is busy, back-pressure, a bounded load test, and the CLI verb.
Correctness only: speed figures live in benchmarks/bench_serve.py."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from doubles.serving import BrightnessPredictor, live_server  # noqa: E402
from unmask.serving.app import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"


def _no_face_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((80, 120, 3), 200, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_healthz_answers_while_the_model_is_busy_and_queue_is_bounded():
    app = create_app(BrightnessPredictor(delay_s=1.5), max_queue=1)
    face = ASTRONAUT.read_bytes()
    with live_server(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        slow: dict = {}

        def upload():
            slow["resp"] = httpx.post(
                f"{url}/v1/detect", files={"file": ("a.jpg", face)}, timeout=20
            )

        t = threading.Thread(target=upload)
        t.start()
        t_end = time.monotonic() + 10
        while client.get("/healthz").json()["in_flight"] < 1:
            assert time.monotonic() < t_end, "the upload never started"
            time.sleep(0.02)
        # The model is now busy for ~1.5 s: health checks still answer at once...
        for _ in range(5):
            t0 = time.monotonic()
            r = client.get("/healthz")
            assert r.status_code == 200 and r.json()["in_flight"] == 1
            assert time.monotonic() - t0 < 0.5
        # ...and a request beyond the queue is turned away, not piled up.
        r = client.post("/v1/detect", files={"file": ("b.jpg", face)})
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
        assert r.headers["retry-after"] == "1"
        t.join(20)
        assert slow["resp"].status_code == 200
        assert len(slow["resp"].json()["result"]["faces"]) == 1


def test_content_length_over_limit_is_refused_before_the_body_is_sent():
    app = create_app(BrightnessPredictor(), max_upload_bytes=1000)
    with live_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                b"POST /v1/detect HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 50000000\r\n\r\n"
            )  # promise 50 MB, send nothing
            reply = b""
            while b'"too_large"' not in reply:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            reply = reply.decode("latin-1")
        assert reply.startswith("HTTP/1.1 413"), reply[:200]
        assert '"too_large"' in reply


def test_load_200_requests_8_concurrent_all_correct():
    """A bounded load test on loopback: every response must be the right answer."""
    app = create_app(BrightnessPredictor(), threads=2)
    face, blank = ASTRONAUT.read_bytes(), _no_face_png()
    n_requests, concurrency, hard_limit_s = 200, 8, 75

    async def main(url: str):
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            ref = (await client.post("/v1/detect", files={"file": ("a.jpg", face)})).json()

            async def one(i: int):
                data, name = (blank, f"blank{i}.png") if i % 4 == 3 else (face, f"a{i}.jpg")
                async with sem:
                    r = await client.post("/v1/detect", files={"file": (name, data)})
                return i, name, r

            results = await asyncio.gather(*(one(i) for i in range(n_requests)))
        return ref, results

    t0 = time.monotonic()
    with live_server(app) as url:
        ref, results = asyncio.run(asyncio.wait_for(main(url), hard_limit_s))
        health = httpx.get(f"{url}/healthz").json()
    elapsed = time.monotonic() - t0
    assert elapsed < hard_limit_s
    ref_face = ref["result"]["faces"][0]
    bad = []
    for i, name, r in results:
        if r.status_code != 200:
            bad.append((i, r.status_code, r.text[:100]))
            continue
        res = r.json()["result"]
        if res["file"] != name:
            bad.append((i, "wrong file", res["file"]))
        elif name.startswith("blank"):
            if res["faces"] or res["verdict"] != "no_face":
                bad.append((i, "face in blank", res["faces"]))
        elif (
            len(res["faces"]) != 1
            or res["faces"][0]["box"] != ref_face["box"]
            or res["faces"][0]["p_fake"] != ref_face["p_fake"]
        ):
            bad.append((i, "wrong answer", res["faces"]))
    assert not bad, bad[:5]
    assert health["in_flight"] == 0 and health["served"] >= n_requests + 1


# ---------------------------------------------------------------- the CLI verb


def test_serve_cli_help_and_bad_model(capsys, tmp_path):
    from unmask.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "127.0.0.1" in out
    assert main(["serve", "--model", str(tmp_path / "nope")]) == 2
    assert "model not found" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path), "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err


def test_app_from_env_builds_the_configured_app(monkeypatch, tmp_path):
    """What each `unmask serve --workers N` process runs: settings from the environment,
    the model loaded once."""
    from fastapi.testclient import TestClient

    import unmask.inference.loader as loader_mod
    from unmask.serving import app as app_mod

    loaded = []

    def fake_load(model_dir, device="cpu", **kw):  # runtime=... too
        loaded.append((Path(model_dir), device))
        return BrightnessPredictor()

    monkeypatch.setattr(loader_mod, "load_predictor", fake_load)
    monkeypatch.setenv(
        app_mod.ENV_CONFIG,
        json.dumps(
            {
                "model": str(tmp_path / "m"),
                "device": "cpu",
                "threshold": 0.25,
                "max_upload_bytes": 1234,
                "max_pixels": 5678,
                "timeout_s": 7.0,
                "threads": 1,
                "max_queue": 3,
                "video_frames": 4,
            }
        ),
    )
    app = app_mod.app_from_env()
    assert loaded == [(tmp_path / "m", "cpu")]
    with TestClient(app) as c:
        body = c.get("/v1/models").json()
    assert body["models"][0]["threshold"] == 0.25
    assert body["limits"] == {
        "max_upload_bytes": 1234,
        "max_pixels": 5678,
        "timeout_s": 7.0,
        "video_frames": 4,
        "max_video_frames": 9000,
    }
