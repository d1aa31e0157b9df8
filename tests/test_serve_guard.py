"""Slow and idle clients against a live server: connections whose headers trickle in are
closed after the header deadline, connections past the cap are refused at once, idle
keep-alive connections close, and the server keeps answering everyone else."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from doubles.serving import BrightnessPredictor, live_server  # noqa: E402
from unmask.serving.app import create_app  # noqa: E402
from unmask.serving.guard import ENV_HEADER_TIMEOUT, PROTOCOL  # noqa: E402

HEADER_TIMEOUT = 3.0  # leaves a clear window to see over-cap connections closed first
MAX_CONNECTIONS = 30


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed the connection (EOF or reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def _wait_closed(sock: socket.socket, within_s: float) -> bool:
    """Read (and drop) whatever the server still sends; True once it closes the connection
    within `within_s` seconds."""
    t_end = time.monotonic() + within_s
    while time.monotonic() < t_end:
        if _closed_by_server(sock):
            return True
        time.sleep(0.05)
    return False


def _open_slow(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    return s


@pytest.fixture()
def guarded(monkeypatch):
    monkeypatch.setenv(ENV_HEADER_TIMEOUT, str(HEADER_TIMEOUT))
    app = create_app(BrightnessPredictor())
    with live_server(
        app, http=PROTOCOL, limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=1
    ) as url:
        yield url, int(url.rsplit(":", 1)[1])


def test_slow_headers_are_cut_off_and_the_server_keeps_answering(guarded):
    url, port = guarded
    socks = [_open_slow(port) for _ in range(60)]  # twice the cap
    try:
        # past the cap: closed straight away
        t_end = time.monotonic() + HEADER_TIMEOUT - 1.0
        closed: set[int] = set()
        while len(closed) < 60 - MAX_CONNECTIONS and time.monotonic() < t_end:
            closed |= {i for i, s in enumerate(socks) if i not in closed and _closed_by_server(s)}
            time.sleep(0.05)
        assert len(closed) >= 60 - MAX_CONNECTIONS
        # the rest trickle a byte every 0.2 s: still cut at the header deadline
        t_end = time.monotonic() + HEADER_TIMEOUT + 2.0
        while time.monotonic() < t_end:
            for s in socks:
                with contextlib.suppress(OSError):
                    s.send(b"X")
            time.sleep(0.2)
        assert all(_wait_closed(s, 3.0) for s in socks)
        r = httpx.get(f"{url}/healthz", timeout=5)  # everyone else is still served
        assert r.status_code == 200
    finally:
        for s in socks:
            s.close()


def test_normal_and_keep_alive_clients_unaffected(guarded):
    url, port = guarded
    with httpx.Client(timeout=5) as c:
        for _ in range(3):  # the same keep-alive connection, slower than nothing
            assert c.get(f"{url}/healthz").status_code == 200
            time.sleep(0.3)
    # a complete request that is slow to be answered is not cut by the header deadline
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        assert _wait_closed(s, HEADER_TIMEOUT + 3.0)  # idle after a response: closed
    finally:
        s.close()
