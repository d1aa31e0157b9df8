"""`read_provenance`: a file's Content Credentials and metadata hints, as one value."""

from __future__ import annotations

import io
import os
import stat
from functools import lru_cache
from pathlib import Path

from unmask.provenance.result import Provenance, make

# PEM file of extra trust anchors (a private CA, the C2PA trust list saved locally): a
# store signed under one of them reads `valid` instead of `unverified`. Never fetched.
TRUST_ENV = "UNMASK_C2PA_TRUST_ANCHORS"
MAX_STORE = 64 << 20  # PNG caBX bytes handed to c2pa at most


def read_provenance(
    source: str | os.PathLike[str] | bytes,
    *,
    trust_anchors: str | None = None,
    use_c2pa: bool = True,
) -> Provenance:
    """The provenance of an image or video file (a path, or its bytes as uploaded).

    Reads, never writes; fetches nothing; never raises: whatever goes wrong is the result's
    `status` ("error") and `reason`. `trust_anchors` (PEM text) defaults to the file named
    by $UNMASK_C2PA_TRUST_ANCHORS, if set. Cheap when the file has no manifest (headers
    and metadata only, no pixel decoded)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        fp: io.BufferedIOBase = io.BytesIO(bytes(source))
    else:
        try:
            if not stat.S_ISREG(os.stat(source).st_mode):  # a FIFO would block an open()
                return make("error", "not a regular file")
            fp = open(source, "rb")  # noqa: SIM115 (closed below)
        except (OSError, ValueError) as exc:
            return make("error", f"cannot open: {getattr(exc, 'strerror', None) or exc}")
    with fp:
        from unmask.provenance.metadata import read_metadata

        meta = read_metadata(fp)
        extra = {"hints": tuple(meta.hints), "notes": tuple(meta.notes)}
        if not use_c2pa:
            return make("unchecked", "", c2pa="off", **extra)
        if meta.c2pa_bytes > MAX_STORE:
            return make("error", f"a C2PA store of {meta.c2pa_bytes >> 20} MiB (limit 64)", **extra)
        try:
            anchors = trust_anchors if trust_anchors is not None else _env_anchors()
        except OSError as exc:
            return make("error", f"${TRUST_ENV}: {exc.strerror or exc}", **extra)
        from unmask.provenance.c2pa_store import read_store

        status, reason, state, manifests = read_store(fp, anchors, _no_store(meta))
    if status == "unchecked" and meta.c2pa_marker:
        reason = "the file carries a C2PA store; " + reason
    return make(status, reason, c2pa=state, manifests=manifests, **extra)


def _no_store(meta) -> bool:
    """Whether the headers, read through, show no place for a store: a JPEG keeps its
    store in APP11 segments before the scan, a PNG in caBX chunks, and a remote store is
    named in XMP (dcterms:provenance). Then c2pa need not run: it parses the whole
    container (a JPEG cut short in its pixel data would be an error there) and walks a
    PNG's chunks through Python callbacks (seconds for 100 000 empty chunks)."""
    return (
        meta.format in ("JPEG", "PNG")
        and meta.complete
        and not meta.c2pa_marker
        and not any(h.kind == "c2pa_remote" for h in meta.hints)
    )


def _env_anchors() -> str | None:
    path = os.environ.get(TRUST_ENV)
    return _read_anchors(path) if path else None


@lru_cache(maxsize=4)
def _read_anchors(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")
