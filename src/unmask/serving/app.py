"""The HTTP API and web page: `create_app(predictor) -> FastAPI`.

    GET  /              web page: drop an image, see boxes, scores and Grad-CAM
    POST /v1/detect     multipart field `file` (image or short video) -> JSON
    POST /v1/explain    multipart field `file` (image), query `face` -> PNG
    GET  /v1/models     the loaded model and the server's limits
    GET  /healthz       liveness, answered even while the model is busy
    GET  /docs          API reference rendered locally from /openapi.json (no CDN)

Every error is JSON `{"error": {"code": ..., "message": ...}}` with a 4xx status (5xx only
for 503 busy, 504 timeout and real bugs). The upload's kind is sniffed from its bytes; the
client's Content-Type and file name are never trusted. `app_from_env` builds the app in
each worker process for `unmask serve --workers N`. (This module imports FastAPI at the top:
import it only when serving.)
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from unmask.serving.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent / "static"
ENV_CONFIG = "UNMASK_SERVE_CONFIG"
MIB = 2**20
log = logging.getLogger("unmask.serve")

CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "image or short video; its format is "
                            "read from its bytes",
                        }
                    },
                }
            }
        },
    }
}


@functools.lru_cache(maxsize=1)
def _error_model():
    from pydantic import BaseModel

    class ErrorDetail(BaseModel):
        code: str
        message: str

    class ErrorBody(BaseModel):
        error: ErrorDetail

    return ErrorBody


def _error_doc(*codes: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": _error_model(), "description": desc} for status, desc in codes}


def _cross_origin(scope) -> bool:
    """A state-changing request (not GET/HEAD/OPTIONS) whose browser-sent Origin is not the
    server itself (scheme://host:port of the Host header). Clients that send no Origin
    (curl, scripts) are not browsers and pass."""
    if scope.get("method", "GET") in ("GET", "HEAD", "OPTIONS"):
        return False
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin")
    if origin is None:
        return False
    host = headers.get(b"host", b"").decode("latin-1").lower()
    scheme = scope.get("scheme", "http")
    return origin.decode("latin-1").lower() != f"{scheme}://{host}"


class _SecurityHeaders:
    """Pure ASGI middleware: CSP and friends on every response (nothing external loads)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if _cross_origin(scope):
            # any web page the user visits could otherwise make this local server work
            # (a simple multipart POST needs no CORS preflight): browsers say where a
            # request comes from, and only the server's own page may post
            body = b'{"error":{"code":"cross_origin","message":"requests from other web pages are refused"}}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body})

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    predictor,
    *,
    model_dir: str | Path | None = None,
    max_upload_bytes: int = 20 * MIB,
    max_pixels: int = 40_000_000,
    timeout_s: float = 30.0,
    threads: int = 1,
    max_queue: int = 64,
    video_frames: int = 8,
    max_video_frames: int = 9000,
):
    """A FastAPI app serving `predictor` (loaded once, shared by every request).

    `threads`: decode/face-detection threads (model calls are serialised anyway);
    `max_queue`: requests waiting or running before new ones get 503."""
    from contextlib import asynccontextmanager

    from unmask import __version__
    from unmask.serving.engine import Engine

    if max_upload_bytes < 1 or max_pixels < 1 or timeout_s <= 0:
        raise ValueError("max_upload_bytes, max_pixels and timeout_s must be positive")
    engine = Engine(
        predictor,
        max_pixels=max_pixels,
        threads=threads,
        max_queue=max_queue,
        video_frames=video_frames,
        max_video_frames=max_video_frames,
    )
    summary = _public_summary(predictor, model_dir, engine)
    limits = {
        "max_upload_bytes": int(max_upload_bytes),
        "max_pixels": int(max_pixels),
        "timeout_s": float(timeout_s),
        "video_frames": int(video_frames),
        "max_video_frames": int(max_video_frames),
    }

    @asynccontextmanager
    async def lifespan(_app):
        yield
        engine.close()

    app = FastAPI(
        title="unmask",
        version=__version__,
        description="Tell real face photos from GAN-generated and edited ones.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.limits = limits
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_error_handlers(app)
    _add_pages(app)
    _add_status_routes(app, engine, summary, limits)
    _add_detect_route(app, engine, summary, max_upload_bytes, timeout_s)
    _add_explain_route(app, engine, summary, max_upload_bytes, timeout_s)
    return app


def _public_summary(predictor, model_dir: str | Path | None, engine) -> dict[str, Any]:
    """The model as /v1/models and /v1/detect describe it."""
    from unmask.inference.report import model_summary

    model_dir = Path(model_dir) if model_dir else Path(str(predictor.meta.get("id", "model")))
    summary = model_summary(predictor, model_dir)
    summary.pop("path", None)  # the server's file system is nobody's business
    summary["kind"] = predictor.meta.get("kind")
    summary["explain"] = engine.explain
    return summary


# ---------------------------------------------------------------- errors as JSON


def _error(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_req, exc: ApiError):
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return _error(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req, exc):
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(
            exc.status_code,
            codes.get(exc.status_code, f"http_{exc.status_code}"),
            str(exc.detail),
            getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req, exc):
        parts = [
            f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        ]
        return _error(422, "invalid_parameter", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _internal(_req, exc):  # a bug: say so in JSON, keep the traceback in the log
        log.exception("internal error", exc_info=exc)
        return _error(500, "internal", "internal server error")


# ---------------------------------------------------------------- pages


def _add_pages(app: FastAPI) -> None:
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC_DIR / "docs.html")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return RedirectResponse("/docs")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)


# ---------------------------------------------------------------- API


def _add_status_routes(app: FastAPI, engine, summary: dict, limits: dict) -> None:
    started = time.time()

    @app.head("/healthz", include_in_schema=False)
    async def healthz_head():
        return Response(status_code=200)

    @app.get("/healthz", summary="Liveness (answered even while the model is busy)")
    async def healthz():
        return {
            "status": "ok",
            "model": summary["id"],
            "in_flight": engine.in_flight,
            "served": engine.served,
            "uptime_s": round(time.time() - started, 1),
        }

    @app.get("/v1/models", summary="The loaded model and the server's limits")
    async def models():
        return {"models": [summary], "limits": limits}


async def _with_timeout(coro, timeout_s: float):
    try:
        return await asyncio.wait_for(coro, timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, "timeout", f"the request took longer than {timeout_s:g} s") from None


def _add_detect_route(
    app: FastAPI, engine, summary: dict, max_upload_bytes: int, timeout_s: float
) -> None:
    from unmask.data.imageio import sniff_bytes
    from unmask.inference.detect import JSON_SCHEMA_VERSION
    from unmask.serving.upload import read_upload

    @app.post(
        "/v1/detect",
        summary="Find and score every face in an image or short video",
        openapi_extra=_UPLOAD_DOC,
        responses=_error_doc(
            (400, "empty body, empty file or malformed multipart"),
            (413, "upload larger than max_upload_bytes, or more than max_pixels pixels"),
            (415, "not multipart/form-data, or the file is neither an image nor a video"),
            (422, "missing `file` field, corrupt or truncated image, unreadable video"),
            (503, "too many requests queued"),
            (504, "timed out"),
        ),
    )
    async def detect(request: Request):
        """JSON: `schema`, `model` (id, detector, version, classes, threshold), `result`
        (`unmask detect --json`'s per-file record: verdict, score and per face its box
        (x0, y0, x1, y1) in original pixels, P(fake), class probabilities and verdict;
        `provenance`: what the upload's Content Credentials and metadata say, beside the
        score and never in it), `image` (decoded width/height; null for videos) and
        `elapsed_ms`."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s

        async def work():
            up = await read_upload(request, max_bytes=max_upload_bytes)
            kind = sniff_bytes(up.data[:64])
            fn = engine.detect_video if kind == "video" else engine.detect_image
            return await engine.run(fn, up.data, up.filename, deadline=deadline)

        res, image = await _with_timeout(work(), timeout_s)
        return {
            "schema": JSON_SCHEMA_VERSION,
            "model": summary,
            "result": res.to_dict(),
            "image": image,
            "elapsed_ms": round(1000 * (time.monotonic() - t0), 1),
        }


def _add_explain_route(
    app: FastAPI, engine, summary: dict, max_upload_bytes: int, timeout_s: float
) -> None:
    from unmask.data.imageio import sniff_bytes
    from unmask.serving.upload import read_upload

    @app.post(
        "/v1/explain",
        summary="Why: Grad-CAM overlay (CNN) or spectrum plot (classical) of one face, PNG",
        openapi_extra=_UPLOAD_DOC,
        response_class=Response,
        responses={
            200: {
                "content": {"image/png": {}},
                "description": "CNN: the crop, then one heatmap per class, side "
                "by side; classical: the face's spectrum plot",
            },
            **_error_doc(
                (400, "empty or malformed upload"),
                (413, "too large"),
                (415, "not an image"),
                (422, "no face / no such face / video / model cannot explain"),
                (504, "timed out"),
            ),
        },
    )
    async def explain(
        request: Request,
        face: int = Query(0, ge=0, le=1000, description="face index as in /v1/detect"),
    ):
        if engine.explain is None:
            raise ApiError(
                422,
                "explain_unsupported",
                f"model {summary['id']} cannot explain: Grad-CAM needs a CNN "
                "model (spectrum plots need a classical one)",
            )
        deadline = time.monotonic() + timeout_s

        async def work():
            up = await read_upload(request, max_bytes=max_upload_bytes)
            if sniff_bytes(up.data[:64]) == "video":
                raise ApiError(
                    422,
                    "explain_image_only",
                    "explain takes a still image; for a video, explain a frame",
                )
            return await engine.run(
                engine.explain_face, up.data, up.filename, face, deadline=deadline
            )

        png, f, member = await _with_timeout(work(), timeout_s)
        return Response(
            png,
            media_type="image/png",
            headers={
                # a composite names the member whose Grad-CAM this is: gradcam:<member>
                "X-Unmask-Explain": engine.explain + (f":{member}" if member else ""),
                "X-Unmask-Face": str(face),
                "X-Unmask-P-Fake": f"{f.p_fake:.6f}",
                "X-Unmask-Verdict": f.verdict,
                "X-Unmask-Classes": ",".join(summary["classes"]),
                "Cache-Control": "no-store",
            },
        )


# ---------------------------------------------------------------- `unmask serve --workers N`


def app_from_env():
    """Factory for uvicorn worker processes: settings come as JSON in $UNMASK_SERVE_CONFIG
    (written by `unmask serve`); each worker loads the model once."""
    from unmask.inference.saved_model import default_model_dir

    cfg = json.loads(os.environ.get(ENV_CONFIG, "{}"))
    model_dir = Path(cfg.pop("model", None) or default_model_dir())
    return app_for_model(model_dir, **cfg)


def app_for_model(
    model_dir: Path,
    *,
    device: str = "cpu",
    runtime: str | None = None,
    threshold: float | None = None,
    **limits: Any,
):
    """Load the model in `model_dir` (its threshold overridden when given) and serve it:
    `unmask serve` in one process, and each worker of `--workers N`."""
    from unmask.inference.loader import load_predictor

    predictor = load_predictor(model_dir, device=device, runtime=runtime)
    if threshold is not None:
        predictor.threshold = float(threshold)
    return create_app(predictor, model_dir=model_dir, **limits)
