"""Errors the HTTP API answers with: always `{"error": {"code": ..., "message": ...}}`.

`ApiError(status, code, message)` is raised anywhere in a request; `from_bad_input` maps the
data pipeline's `BadInputError.reason` tags onto HTTP statuses so a bad upload is always a
4xx, never a 500.
"""

from __future__ import annotations

from unmask.errors import BadInputError

# BadInputError.reason -> (HTTP status, API error code)
_REASONS: dict[str, tuple[int, str]] = {
    "empty": (400, "empty_file"),
    "too_large": (413, "too_many_pixels"),
    "not_an_image": (415, "not_an_image"),
    "corrupt": (422, "corrupt"),
    "truncated": (422, "truncated"),
    "video_unreadable": (422, "video_unreadable"),
    "video_empty": (422, "video_empty"),
    "missing": (422, "unreadable"),
    "unreadable": (422, "unreadable"),
}


class ApiError(Exception):
    """A request the server refuses, with its HTTP status and a stable machine code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def from_reason(reason: str, detail: str, name: str = "upload") -> ApiError:
    status, code = _REASONS.get(reason, (422, reason or "bad_input"))
    msg = f"{name}: {reason.replace('_', ' ')}" + (f" ({detail})" if detail else "")
    return ApiError(status, code, msg)


def from_bad_input(exc: BadInputError, name: str = "upload") -> ApiError:
    return from_reason(exc.reason, exc.detail, name)
