"""`unmask serve`: the HTTP API and web page."""

from __future__ import annotations

import argparse

HELP = "serve the model over HTTP: JSON API and a web page (drop an image, see the faces)"
DESCRIPTION = """\
Serve a saved model (default: the model that ships with unmask) over HTTP:

  GET  /             web page: drop an image, see face boxes (red fake / green real),
                     scores, and a Grad-CAM heatmap when you click a face
  POST /v1/detect    multipart field "file" (image or short video) -> JSON
  POST /v1/explain   multipart field "file", ?face=N -> PNG (Grad-CAM or spectrum)
  GET  /v1/models    GET /healthz    GET /docs (API reference, served offline)

Binds 127.0.0.1 by default. There is no authentication: put it behind a reverse proxy
before exposing it with --host 0.0.0.0. Slow clients are bounded: request headers must
arrive within --header-timeout s, idle connections close after --keep-alive s, at most
--max-connections are open per process, and every request ends within --timeout s.

examples:
  unmask serve
  unmask serve --model runs/effnet/model --port 8080 --workers 2
  curl -F file=@photo.jpg http://127.0.0.1:8000/v1/detect
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", "-m", default=None, help="saved model folder (default: the shipped model)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own copy of the model (default 1)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="decode/face-detection threads per process (default 1)",
    )
    _add_request_limits(p)
    _add_connection_limits(p)
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="override the model's calibrated P(fake) threshold",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (CNN models)")
    from unmask.inference.onnx_runtime import add_runtime_argument

    add_runtime_argument(p)
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )


def _add_request_limits(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        help="largest upload accepted, MiB (default 20)",
    )
    p.add_argument(
        "--max-pixels",
        type=float,
        default=40e6,
        help="largest image accepted, pixels (default 40e6)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds before a request is answered 504 (default 30)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=64,
        help="requests queued per process before new ones get 503 (default 64)",
    )
    p.add_argument(
        "--video-frames", type=int, default=8, help="frames sampled per uploaded video (default 8)"
    )
    p.add_argument(
        "--max-video-frames",
        type=int,
        default=9000,
        help="longest video accepted, frames from its header (default 9000)",
    )


def _add_connection_limits(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("connections (slow or idle clients)")
    c.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send a request's headers, after connecting or after "
        "its last response, before the connection is closed (default 10)",
    )
    c.add_argument(
        "--keep-alive",
        type=float,
        default=5.0,
        help="seconds an idle keep-alive connection stays open (default 5)",
    )
    c.add_argument(
        "--max-connections",
        type=int,
        default=128,
        help="open connections per process; more are closed at once, and requests past "
        "it get 503 (default 128)",
    )


def run(args: argparse.Namespace) -> int:
    import sys

    uvicorn = _check_arguments(args)
    model_dir = _check_model(args)
    check_port(args.host, args.port)  # a busy port: one line, not uvicorn's log
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"unmask serve: warning: binding {args.host}: no authentication, anyone who "
            "can reach this port can use the model",
            file=sys.stderr,
        )
    common = _uvicorn_options(args)
    if args.workers == 1:
        from unmask.serving.app import app_for_model

        app = app_for_model(
            model_dir,
            device=args.device,
            runtime=args.runtime,
            threshold=args.threshold,
            **_limits(args),
        )
        print(
            f"unmask serve: model {model_dir.name} on http://{args.host}:{args.port}/",
            file=sys.stderr,
        )
        uvicorn.run(app, **common)
        return 0
    _config_for_workers(args, model_dir)
    print(
        f"unmask serve: {args.workers} workers, model {model_dir.name} on "
        f"http://{args.host}:{args.port}/",
        file=sys.stderr,
    )
    uvicorn.run("unmask.serving.app:app_from_env", factory=True, workers=args.workers, **common)
    return 0


def _check_arguments(args: argparse.Namespace):
    """Every flag checked in one line before the model loads -> the uvicorn module."""
    from unmask.errors import UnmaskError

    if not 1 <= args.port <= 65535:
        raise UnmaskError(f"--port must be in 1..65535, got {args.port}")
    if args.workers < 1 or args.threads < 1 or args.max_queue < 1 or args.video_frames < 1:
        raise UnmaskError("--workers, --threads, --max-queue and --video-frames must be >= 1")
    if args.max_upload_mb <= 0 or args.max_pixels < 1 or args.timeout <= 0:
        raise UnmaskError("--max-upload-mb, --max-pixels and --timeout must be positive")
    if args.header_timeout <= 0 or args.keep_alive <= 0 or args.max_connections < 1:
        raise UnmaskError("--header-timeout, --keep-alive and --max-connections must be positive")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UnmaskError("--threshold must be within [0, 1]")
    try:
        import uvicorn
    except ImportError:
        raise UnmaskError("serving needs the 'serve' extra: pip install 'unmask[serve]'") from None
    return uvicorn


def _check_model(args: argparse.Namespace):
    """The model folder, its model.json read and the device and runtime checked: a missing
    or invalid model fails here, in one line."""
    from pathlib import Path

    from unmask.inference.device import check_device
    from unmask.inference.onnx_runtime import resolve_runtime
    from unmask.inference.saved_model import default_model_dir, read_model_json

    check_device(args.device)
    resolve_runtime(args.runtime, args.device)  # a bad choice: one line, before the model
    model_dir = Path(args.model) if args.model else default_model_dir()
    read_model_json(model_dir)
    return model_dir


def _limits(args: argparse.Namespace) -> dict:
    """`create_app`'s limits from the flags."""
    return {
        "max_upload_bytes": int(args.max_upload_mb * 2**20),
        "max_pixels": int(args.max_pixels),
        "timeout_s": float(args.timeout),
        "threads": args.threads,
        "max_queue": args.max_queue,
        "video_frames": args.video_frames,
        "max_video_frames": args.max_video_frames,
    }


def _uvicorn_options(args: argparse.Namespace) -> dict:
    """uvicorn's settings, the same for one process or several."""
    import os

    from unmask.serving.guard import ENV_HEADER_TIMEOUT, PROTOCOL

    os.environ[ENV_HEADER_TIMEOUT] = str(args.header_timeout)  # read in every worker
    return dict(
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
        server_header=False,
        http=PROTOCOL,  # uvicorn's h11 plus a header deadline and a connection cap
        timeout_keep_alive=args.keep_alive,
        limit_concurrency=args.max_connections,
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
    )


def _config_for_workers(args: argparse.Namespace, model_dir) -> None:
    """Several processes: each worker builds its own app (and loads the model once) from
    this configuration in its environment (`serving.app.app_from_env`)."""
    import json
    import os

    cfg = {
        "model": str(model_dir.resolve()),
        "device": args.device,
        "runtime": args.runtime,
        "threshold": args.threshold,
        **_limits(args),
    }
    os.environ["UNMASK_SERVE_CONFIG"] = json.dumps(cfg)  # serving.app.ENV_CONFIG: no FastAPI here


def check_port(host: str, port: int) -> None:
    """Bind (host, port) once and let go, as uvicorn will bind it: an address in use or
    not ours is one line before the model loads."""
    import socket

    from unmask.errors import UnmaskError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnmaskError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            raise UnmaskError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
