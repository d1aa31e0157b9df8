"""Reading one multipart upload with a hard size limit enforced while it streams in.

FastAPI's `UploadFile` parameter parses the whole body before the endpoint runs; here the
body is counted chunk by chunk as the multipart parser consumes it, so an oversized upload
is refused (413) as soon as the limit is passed - or at once when `Content-Length` already
says so - without buffering it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from unmask.serving.errors import ApiError

# Multipart framing around the file (boundaries, part headers, small form fields) may add
# this much on top of the file itself; the file's own size is checked exactly afterwards.
MULTIPART_OVERHEAD = 64 * 1024
_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+")


@dataclass
class Upload:
    data: bytes
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


class _TooLarge(Exception):
    pass


def safe_name(filename: str | None) -> str:
    """The client's file name reduced to a harmless label (never used as a path)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")[:120]
    return name or "upload"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


async def _has_body(request) -> bool:
    """Whether a request without Content-Length has any body (reads one chunk at most)."""
    async for chunk in request.stream():
        if chunk:
            return True
    return False


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "too_large", f"upload larger than the limit of {_mib(max_bytes)}")


def _empty_body(field_name: str) -> ApiError:
    return ApiError(
        400, "empty_body", f"empty request: send the image as multipart field {field_name!r}"
    )


async def read_upload(request, *, max_bytes: int, field_name: str = "file") -> Upload:
    """The bytes of multipart field `field_name`, plus the other (text) fields.

    Raises `ApiError`: 400 empty_body / bad_multipart / empty_file, 413 too_large,
    415 unsupported_media_type, 422 missing_field / not_a_file."""
    await _check_headers(request, max_bytes, field_name)
    form, received = await _parse_form(request, max_bytes)
    try:
        if received == 0:
            raise _empty_body(field_name)
        return await _file_field(form, max_bytes, field_name)
    finally:
        await form.close()


async def _check_headers(request, max_bytes: int, field_name: str) -> None:
    """Refuse from the headers alone: an empty or oversized body by its Content-Length,
    anything but multipart/form-data by its Content-Type."""
    headers = request.headers
    ctype = headers.get("content-type", "")
    length = headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise ApiError(400, "bad_request", "invalid Content-Length header") from None
        if n == 0:
            raise _empty_body(field_name)
        if n > max_bytes + MULTIPART_OVERHEAD:
            raise _too_large(max_bytes)
    if not ctype.lower().startswith("multipart/form-data"):
        if length is None and not await _has_body(request):  # e.g. `curl -X POST URL`
            raise _empty_body(field_name)
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send multipart/form-data with the image in field {field_name!r} "
            f"(got Content-Type {ctype or 'none'!r})",
        )


async def _parse_form(request, max_bytes: int):
    """(the parsed form, body bytes received), the body counted chunk by chunk as the
    parser consumes it: refused (413) as soon as it passes the limit."""
    from starlette.formparsers import MultiPartException, MultiPartParser
    from starlette.requests import ClientDisconnect

    limit = max_bytes + MULTIPART_OVERHEAD
    received = 0

    async def counted() -> AsyncGenerator[bytes, None]:
        nonlocal received
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _TooLarge
            yield chunk

    parser = MultiPartParser(
        request.headers, counted(), max_files=4, max_fields=16, max_part_size=64 * 1024
    )
    try:
        form = await parser.parse()
    except _TooLarge:
        raise _too_large(max_bytes) from None
    except MultiPartException as exc:
        raise ApiError(400, "bad_multipart", f"malformed multipart body: {exc}") from None
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the client went away mid-upload") from None
    return form, received


async def _file_field(form, max_bytes: int, field_name: str) -> Upload:
    """The file in `field_name` (its size checked exactly) and the form's text fields."""
    from starlette.datastructures import UploadFile

    item = form.get(field_name)
    if item is None:
        got = ", ".join(repr(k) for k in form) or "none"
        raise ApiError(
            422,
            "missing_field",
            f"multipart field {field_name!r} is required (got fields: {got})",
        )
    if not isinstance(item, UploadFile):
        raise ApiError(
            422, "not_a_file", f"field {field_name!r} must be a file upload, not a text value"
        )
    data = await item.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise ApiError(400, "empty_file", "the uploaded file is empty (0 bytes)")
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return Upload(data=data, filename=safe_name(item.filename), fields=fields)
