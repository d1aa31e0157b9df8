"""Connection limits uvicorn lacks: a deadline for request headers and a connection cap.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and answers 503 past
`limit_concurrency`, but only once a request's headers are complete: a client that sends
its headers one byte at a time ("slowloris") holds a connection, and a file descriptor,
forever. `GuardedH11Protocol` (uvicorn's h11 protocol plus two checks) closes a connection
whose request headers are not complete `header_timeout_s` after it opened or after its last
response, and refuses a new connection outright when `limit_concurrency` are already open.
Bodies are bounded by the app's own request timeout (`--timeout`).

uvicorn builds one protocol object per connection from the class, in every worker process,
so the setting travels in the environment: `UNMASK_HEADER_TIMEOUT_S` (set by `unmask serve`).
"""

from __future__ import annotations

import logging
import os

from uvicorn.protocols.http.h11_impl import H11Protocol

ENV_HEADER_TIMEOUT = "UNMASK_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0
PROTOCOL = "unmask.serving.guard:GuardedH11Protocol"  # for uvicorn's `http=` setting
log = logging.getLogger("unmask.serve")


def header_timeout_s() -> float:
    try:
        value = float(os.environ.get(ENV_HEADER_TIMEOUT, DEFAULT_HEADER_TIMEOUT_S))
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT_S
    return value if value > 0 else DEFAULT_HEADER_TIMEOUT_S


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s()
        self._header_timer = None

    # a deadline for every request's headers
    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: the app's own timeout applies
        if self.transport is not None and not self.transport.is_closing():
            log.info("closing a connection: request headers not complete in time")
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) > limit:
            transport.close()  # over the cap: no HTTP exchange at all, no fd held
            return
        self._arm_header_timer()

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if self._header_timer is not None and cycle is not None and not cycle.response_complete:
            self._cancel_header_timer()  # a request's headers arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request at once
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)
