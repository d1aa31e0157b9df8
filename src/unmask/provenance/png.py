"""A bounded walk over a PNG's chunks: its text (tEXt, zTXt, iTXt), its eXIf block and
whether it carries a C2PA store (caBX), without decoding a pixel.

Pillow reads text chunks too, but up to 64 MB of them per image (`MAX_TEXT_MEMORY`) and
only those before the first IDAT; here every chunk header is walked (pixel data is
skipped with a seek) with small caps on the count and the bytes read, and compressed text
is inflated with a ceiling, so a PNG of thousands of text chunks or a zlib bomb costs
milliseconds.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNKS = 65536  # chunk headers walked (a 500 MB PNG of 8 KB IDATs: 64 000)
MAX_TEXT_CHUNKS = 64
MAX_TEXT_BYTES = 2 << 20  # raw bytes of text chunks read, all together
MAX_INFLATED = 64 << 10  # characters inflated per text chunk (XMP: MAX_XMP_INFLATED)
MAX_XMP_INFLATED = 1 << 20
MAX_EXIF = 1 << 20
XMP_KEY = "XML:com.adobe.xmp"


@dataclass
class PngMeta:
    texts: list[tuple[str, str]] = field(default_factory=list)  # (keyword, text)
    exif: bytes | None = None
    c2pa_bytes: int = 0  # total size of caBX chunks
    notes: list[str] = field(default_factory=list)
    complete: bool = False  # every chunk walked, up to IEND


def read_png(fp: BinaryIO) -> PngMeta:
    """The metadata of the PNG in `fp` (positioned anywhere; read from its start)."""
    out = PngMeta()
    fp.seek(0)
    if fp.read(8) != PNG_SIGNATURE:
        raise ValueError("not a PNG")
    budget = MAX_TEXT_BYTES
    for _ in range(MAX_CHUNKS):
        head = fp.read(8)
        if len(head) < 8:
            out.notes.append("PNG: ends before its IEND chunk")
            return out
        length, ctype = struct.unpack(">I4s", head)
        if length > 0x7FFFFFFF:
            out.notes.append("PNG: a chunk length over 2^31 (corrupt); the rest not read")
            return out
        if ctype == b"IEND":
            out.complete = True
            return out
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            if len(out.texts) >= MAX_TEXT_CHUNKS or length > budget:
                _note_once(out, f"PNG: text beyond {MAX_TEXT_CHUNKS} chunks or 2 MiB not read")
            else:
                budget -= length
                text = _text_chunk(ctype, fp.read(length))
                if text is not None:
                    out.texts.append(text)
                fp.seek(4, 1)  # CRC
                continue
        elif ctype == b"eXIf" and length <= MAX_EXIF and out.exif is None:
            out.exif = fp.read(length)
            fp.seek(4, 1)
            continue
        elif ctype == b"caBX":
            out.c2pa_bytes += length
        fp.seek(length + 4, 1)
    out.notes.append(f"PNG: more than {MAX_CHUNKS} chunks; the rest not read")
    return out


def _note_once(out: PngMeta, note: str) -> None:
    if note not in out.notes:
        out.notes.append(note)


def _text_chunk(ctype: bytes, data: bytes) -> tuple[str, str] | None:
    """(keyword, text) of one text chunk; None when it is malformed."""
    key, sep, rest = data.partition(b"\0")
    if not sep or not 1 <= len(key) <= 79:
        return None
    keyword = key.decode("latin-1")
    cap = MAX_XMP_INFLATED if keyword == XMP_KEY else MAX_INFLATED
    if ctype == b"tEXt":
        return keyword, rest[:cap].decode("latin-1")
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            return None
        raw = _inflate(rest[1:], cap)
        return None if raw is None else (keyword, raw.decode("latin-1"))
    # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        return None
    flag, method, rest = rest[0], rest[1], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _tkey, _, text = rest.partition(b"\0")
    if flag:
        if method != 0:
            return None
        text = _inflate(text, cap)
        if text is None:
            return None
    return keyword, text[: 4 * cap].decode("utf-8", errors="replace")[:cap]


def _inflate(data: bytes, cap: int) -> bytes | None:
    """At most `cap` bytes of zlib output: a bomb stops at the ceiling."""
    try:
        return zlib.decompressobj().decompress(data, cap)
    except zlib.error:
        return None
