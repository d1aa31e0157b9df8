"""`unmask serve` API through FastAPI's TestClient: the happy paths (a real face, no face, a
video) and every bad input, which must each be a 4xx with a JSON error, never a 500.

The model is a stand-in (`BrightnessPredictor`: P(fake) = mean brightness of the crop):
these tests test the service, not a model. Faces are found by the real MediaPipe cropper.
"""

from __future__ import annotations

import glob
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from doubles.serving import BrightnessPredictor, TinyCamPredictor  # noqa: E402
from unmask.serving.app import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def face_jpg() -> bytes:
    return ASTRONAUT.read_bytes()


@pytest.fixture(scope="module")
def no_face_png() -> bytes:
    rng = np.random.default_rng(0)
    return png(rng.integers(90, 110, size=(96, 128, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def client():
    app = create_app(BrightnessPredictor(), max_upload_bytes=1_000_000, max_pixels=4_000_000)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


# ---------------------------------------------------------------- happy paths


def test_detect_one_face(client, face_jpg):
    resp = client.post("/v1/detect", files={"file": ("astronaut.jpg", face_jpg, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["schema"] == 1
    assert body["model"]["id"] == "brightness-standin"
    assert {"id", "detector", "version", "classes", "threshold"} <= set(body["model"])
    assert "path" not in body["model"]
    assert body["image"] == {"width": 512, "height": 512}
    res = body["result"]
    assert res["file"] == "astronaut.jpg" and res["kind"] == "image" and res["status"] == "ok"
    assert len(res["faces"]) == 1
    face = res["faces"][0]
    x0, y0, x1, y1 = face["box"]
    assert 100 < x0 < x1 < 360 and 0 <= y0 < y1 < 260  # the astronaut's face, upper middle
    assert 0.0 <= face["p_fake"] <= 1.0
    assert face["probs"]["fake"] == pytest.approx(face["p_fake"])
    assert face["verdict"] == ("fake" if face["p_fake"] >= 0.5 else "real")
    assert res["score"] == face["p_fake"] and res["verdict"] == face["verdict"]
    assert "crop" not in face and "landmarks" not in face


def test_detect_no_face(client, no_face_png):
    resp = client.post("/v1/detect", files={"file": ("noise.png", no_face_png, "image/png")})
    assert resp.status_code == 200, resp.text
    res = resp.json()["result"]
    assert res["status"] == "ok" and res["verdict"] == "no_face"
    assert res["faces"] == [] and res["score"] is None


def test_detect_reports_provenance_beside_the_score(client, face_jpg):
    """The uploaded bytes' Content Credentials and metadata ride in `result.provenance`,
    beside a score they never change; the page shows its `summary` (issue 23)."""
    plain = client.post("/v1/detect", files={"file": ("a.jpg", face_jpg, "image/jpeg")}).json()
    prov = plain["result"]["provenance"]
    assert prov["summary"] == "none" and prov["status"] in ("none", "unchecked")
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a face\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    buf = io.BytesIO()
    Image.open(ASTRONAUT).save(buf, format="PNG", pnginfo=info)
    sd = client.post("/v1/detect", files={"file": ("sd.png", buf.getvalue(), "image/png")})
    assert sd.json()["result"]["provenance"]["summary"].endswith(
        "PNG parameters (Stable Diffusion)"
    )
    # the page has the place for it, filled from that field as text
    assert 'id="provenance"' in client.get("/").text
    js = client.get("/static/app.js").text
    assert "showProvenance(res.provenance)" in js and "el.textContent = p.summary" in js
    try:
        from doubles.provenance import sign_image, throwaway_chain

        signed = sign_image(face_jpg, "image/jpeg", throwaway_chain())
    except ImportError:
        pytest.skip("c2pa-python (the `provenance` extra) not installed")
    body = client.post("/v1/detect", files={"file": ("s.jpg", signed, "image/jpeg")}).json()
    res, prov = body["result"], body["result"]["provenance"]
    assert res["score"] == plain["result"]["score"] and res["verdict"] == plain["result"]["verdict"]
    assert prov["status"] == "unverified" and prov["declares"] == "generated"
    assert prov["manifests"][0]["signer"] == "unmask test signer"
    assert prov["summary"].startswith("Content Credentials: generated by AI")


def test_content_is_sniffed_not_trusted(client, face_jpg):
    # A JPEG named .txt and sent as text/plain is still read as the JPEG it is...
    resp = client.post("/v1/detect", files={"file": ("notes.txt", face_jpg, "text/plain")})
    assert resp.status_code == 200 and len(resp.json()["result"]["faces"]) == 1
    # ...and text named .jpg and sent as image/jpeg is refused.
    resp = client.post(
        "/v1/detect", files={"file": ("photo.jpg", b"just some text, honest" * 10, "image/jpeg")}
    )
    assert_error(resp, 415, "not_an_image")


def test_client_file_name_is_sanitised(client, no_face_png):
    resp = client.post(
        "/v1/detect", files={"file": ("../../etc/<script>x.png", no_face_png, "image/png")}
    )
    assert resp.status_code == 200
    assert resp.json()["result"]["file"] == "_script_x.png"


def test_models_health_and_pages(client):
    body = client.get("/v1/models").json()
    assert body["models"][0]["classes"] == ["real", "fake"]
    assert body["limits"]["max_upload_bytes"] == 1_000_000
    assert client.head("/healthz").status_code == 200
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "brightness-standin"
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    # Nothing on the pages loads from another origin (and the CSP forbids it anyway).
    for path in ("/", "/docs", "/static/app.js", "/static/docs.js", "/static/style.css"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "http://" not in r.text.replace("http://127.0.0.1", "") and "https://" not in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/redoc", follow_redirects=False).headers["location"] == "/docs"
    spec = client.get("/openapi.json").json()
    assert {"/v1/detect", "/v1/explain", "/v1/models", "/healthz"} <= set(spec["paths"])
    detect = spec["paths"]["/v1/detect"]["post"]
    assert "file" in detect["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"400", "413", "415", "422", "504"} <= set(detect["responses"])


def _make_video(path: Path, frame: np.ndarray, n: int = 6) -> None:
    import cv2

    h, w = frame.shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert out.isOpened()
    for _ in range(n):
        out.write(np.ascontiguousarray(frame[:, :, ::-1]))
    out.release()


def _temp_uploads() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "unmask-upload-*")))


def test_detect_video_and_temp_file_removed(client, tmp_path):
    frame = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((256, 256)))
    video = tmp_path / "clip.avi"
    _make_video(video, frame)
    before = _temp_uploads()
    resp = client.post("/v1/detect", files={"file": ("clip.bin", video.read_bytes(), "video/x")})
    # A 500 here with "'VideoInfo' object is not iterable" in the log is detect._finish doing
    # dict(video_info(...)) on the VideoInfo dataclass: unmask detect fails on videos too.
    assert resp.status_code == 200, resp.text
    body = resp.json()
    res = body["result"]
    assert res["kind"] == "video" and res["file"] == "clip.bin" and body["image"] is None
    assert res["video"]["frames_sampled"] == 6
    assert len(res["faces"]) == 6 and {f["track"] for f in res["faces"]} == {0}
    assert res["verdict"] in ("real", "fake")
    assert _temp_uploads() == before  # the upload's temp file is gone
    # A "video" whose container is garbage is a 422, and its temp file is removed too.
    junk = b"\x1a\x45\xdf\xa3" + os.urandom(3000)
    body = assert_error(
        client.post("/v1/detect", files={"file": ("x.webm", junk, "video/webm")}),
        422,
        "video_unreadable",
    )
    # the message names the upload, never the server's temp file
    assert body["error"]["message"].startswith("x.webm: ")
    assert "unmask-upload" not in body["error"]["message"]
    assert _temp_uploads() == before


def test_long_video_refused_from_its_header(tmp_path):
    frame = np.zeros((64, 64, 3), np.uint8)
    video = tmp_path / "long.avi"
    _make_video(video, frame, n=6)
    before = _temp_uploads()
    with TestClient(create_app(BrightnessPredictor(), max_video_frames=5)) as c:
        resp = c.post("/v1/detect", files={"file": ("long.avi", video.read_bytes(), "x")})
    assert_error(resp, 413, "video_too_long")
    assert _temp_uploads() == before


# ---------------------------------------------------------------- bad input


def test_empty_body(client):
    assert_error(client.post("/v1/detect"), 400, "empty_body")
    # no Content-Length and no Content-Type either (`curl -X POST URL`)
    resp = client.post("/v1/detect", content=iter([]))
    assert "content-length" not in resp.request.headers
    assert_error(resp, 400, "empty_body")


def test_empty_file(client):
    assert_error(
        client.post("/v1/detect", files={"file": ("a.jpg", b"", "image/jpeg")}), 400, "empty_file"
    )


def test_wrong_and_missing_field(client, face_jpg):
    resp = client.post("/v1/detect", files={"image": ("a.jpg", face_jpg, "image/jpeg")})
    assert "'image'" in assert_error(resp, 422, "missing_field")["error"]["message"]
    resp = client.post(
        "/v1/detect", data={"file": "astronaut.jpg"}, files={"other": ("a.jpg", b"x", "image/jpeg")}
    )
    assert_error(resp, 422, "not_a_file")
    resp = client.post("/v1/detect", data={"something": "else"})  # urlencoded form
    assert_error(resp, 415, "unsupported_media_type")


def test_not_multipart(client, face_jpg):
    resp = client.post("/v1/detect", content=face_jpg, headers={"content-type": "image/jpeg"})
    assert_error(resp, 415, "unsupported_media_type")


def test_malformed_multipart(client):
    resp = client.post(
        "/v1/detect", content=b"no boundary here", headers={"content-type": "multipart/form-data"}
    )
    assert_error(resp, 400, "bad_multipart")


def test_corrupt_and_truncated(client, face_jpg):
    corrupt = face_jpg[:200] + bytes(range(256)) * 20
    resp = client.post("/v1/detect", files={"file": ("c.jpg", corrupt, "image/jpeg")})
    assert resp.status_code == 422 and resp.json()["error"]["code"] in ("corrupt", "truncated")
    resp = client.post("/v1/detect", files={"file": ("t.jpg", face_jpg[:3000], "image/jpeg")})
    assert_error(resp, 422, "truncated")
    header_only = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    resp = client.post("/v1/detect", files={"file": ("h.png", header_only, "image/png")})
    assert_error(resp, 422, "corrupt")


def test_too_many_pixels(client):
    big = png(np.zeros((2100, 2000, 3), np.uint8))  # 4.2 MP > max_pixels 4 MP, ~25 KB file
    assert len(big) < 1_000_000
    resp = client.post("/v1/detect", files={"file": ("big.png", big, "image/png")})
    assert "4200000" in assert_error(resp, 413, "too_many_pixels")["error"]["message"]


def test_upload_too_large_by_content_length(client):
    resp = client.post("/v1/detect", files={"file": ("big.jpg", b"\xff" * 1_100_000, "image/jpeg")})
    assert_error(resp, 413, "too_large")


def test_upload_too_large_while_streaming():
    """No Content-Length (chunked): the body is counted as it arrives and refused once past
    the limit, without reading the rest. Driven at the ASGI level to count what was read."""
    import asyncio

    app = create_app(BrightnessPredictor(), max_upload_bytes=200_000)
    boundary = "unmaskboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    chunks = [head] + [b"\xff" * 64_000] * 200  # 12.8 MB offered, the limit is 200 kB
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        if pulled > len(chunks):
            await asyncio.sleep(3600)  # the client would still be uploading
        return {
            "type": "http.request",
            "body": chunks[pulled - 1],
            "more_body": pulled < len(chunks),
        }

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/detect",
        "raw_path": b"/v1/detect",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b'"too_large"' in body
    assert pulled <= 6, f"server read {pulled} chunks; 5 are past the limit"


def test_file_just_over_the_limit(client):
    # Content-Length within limit + multipart overhead, but the file itself is 1 byte over.
    resp = client.post("/v1/detect", files={"file": ("a.jpg", b"\xff" * 1_000_001, "image/jpeg")})
    assert_error(resp, 413, "too_large")


def test_unknown_routes_and_methods(client):
    assert_error(client.get("/v1/nope"), 404, "not_found")
    assert_error(client.get("/v1/detect"), 405, "method_not_allowed")


def test_timeout_is_504(face_jpg):
    app = create_app(BrightnessPredictor(delay_s=1.0), timeout_s=0.3)
    with TestClient(app, raise_server_exceptions=False) as c:
        resp = c.post("/v1/detect", files={"file": ("a.jpg", face_jpg, "image/jpeg")})
        assert_error(resp, 504, "timeout")


def test_model_bug_is_a_json_500_not_a_crash(no_face_png, face_jpg):
    class Broken(BrightnessPredictor):
        def predict_proba(self, crops, landmarks=None):
            raise RuntimeError("boom")

    with TestClient(create_app(Broken()), raise_server_exceptions=False) as c:
        assert_error(
            c.post("/v1/detect", files={"file": ("a.jpg", face_jpg, "image/jpeg")}), 500, "internal"
        )
        # the server still works for inputs that do not reach the model
        assert (
            c.post("/v1/detect", files={"file": ("n.png", no_face_png, "image/png")}).status_code
            == 200
        )


# ---------------------------------------------------------------- explain


def test_explain_needs_a_model_that_can_explain(client, face_jpg):
    resp = client.post("/v1/explain", files={"file": ("a.jpg", face_jpg, "image/jpeg")})
    assert_error(resp, 422, "explain_unsupported")


def test_explain_gradcam_png(face_jpg, no_face_png):
    pytest.importorskip("torch")
    with TestClient(create_app(TinyCamPredictor()), raise_server_exceptions=False) as c:
        assert c.get("/v1/models").json()["models"][0]["explain"] == "gradcam"
        resp = c.post("/v1/explain?face=0", files={"file": ("a.jpg", face_jpg, "image/jpeg")})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "image/png"
        assert resp.headers["x-unmask-explain"] == "gradcam"
        assert resp.headers["x-unmask-verdict"] in ("real", "fake")
        im = Image.open(io.BytesIO(resp.content))
        assert im.size == (64 * 3, 64)  # crop + one heatmap per class
        assert_error(
            c.post("/v1/explain?face=3", files={"file": ("a.jpg", face_jpg, "x")}),
            422,
            "no_such_face",
        )
        assert_error(
            c.post("/v1/explain", files={"file": ("n.png", no_face_png, "x")}), 422, "no_face"
        )
        assert_error(
            c.post("/v1/explain?face=abc", files={"file": ("a.jpg", face_jpg, "x")}),
            422,
            "invalid_parameter",
        )
        assert_error(
            c.post("/v1/explain", files={"file": ("v.mkv", b"\x1a\x45\xdf\xa3" * 9, "x")}),
            422,
            "explain_image_only",
        )
        assert_error(c.post("/v1/explain"), 400, "empty_body")


@pytest.mark.slow
def test_explain_works_with_the_shipped_model(face_jpg):
    """The web page's "click a face to see why" with the shipped composite (issue 24: it was
    422 explain_unsupported): the Grad-CAM of a member that scores the resized crop."""
    pytest.importorskip("torch")
    from unmask.inference.loader import load_predictor
    from unmask.modelfile import default_model_dir

    pred = load_predictor(default_model_dir())
    with TestClient(create_app(pred), raise_server_exceptions=False) as c:
        assert c.get("/v1/models").json()["models"][0]["explain"] == "gradcam"
        resp = c.post("/v1/explain?face=0", files={"file": ("a.jpg", face_jpg, "image/jpeg")})
        assert resp.status_code == 200, resp.text
        kind, _, member = resp.headers["x-unmask-explain"].partition(":")
        assert kind == "gradcam" and member in pred.members
        assert not pred.members[member].needs.tiles  # explained on the input it scored
        im = Image.open(io.BytesIO(resp.content))
        assert im.size[0] == 3 * im.size[1]  # crop + one heatmap per class


def test_cross_origin_post_is_refused(client, face_jpg):
    """Any web page the user visits could post to the local server (issue 24): a browser's
    Origin other than the server's own is 403; the page itself and non-browser clients pass."""
    files = {"file": ("a.jpg", face_jpg, "image/jpeg")}
    resp = client.post("/v1/detect", files=files, headers={"Origin": "https://evil.example"})
    assert_error(resp, 403, "cross_origin")
    assert_error(
        client.post("/v1/detect", files=files, headers={"Origin": "null"}), 403, "cross_origin"
    )
    own = client.post("/v1/detect", files=files, headers={"Origin": "http://testserver"})
    assert own.status_code == 200, own.text
    assert client.post("/v1/detect", files=files).status_code == 200
    assert client.get("/v1/models", headers={"Origin": "https://evil.example"}).status_code == 200
