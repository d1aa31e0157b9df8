"""A few named values out of an XMP packet, in bounded time, without an XML parser.

An XML parser would expand entities and build a tree of whatever size the file chooses;
we need five values. Each name is found with `str.find` (at most `MAX_HITS` occurrences),
and its value is read by a regular expression anchored there, on a window of at most
`WINDOW` characters: the work is bounded whatever the packet holds.
"""

from __future__ import annotations

import html
import re

MAX_XMP = 1 << 20  # characters of a packet read
MAX_HITS = 32  # occurrences of one name examined
WINDOW = 4096

# After `prefix:Name`: an attribute (`="v"`), an rdf:resource, or an element whose text
# may sit inside one rdf:Alt/Seq/Bag item.
_ATTR = re.compile(r"""\s*=\s*(?:"([^"]{0,2048})"|'([^']{0,2048})')""")
_RESOURCE = re.compile(r"""\s+rdf:resource\s*=\s*(?:"([^"]{0,2048})"|'([^']{0,2048})')""")
_ELEM = re.compile(
    r"(?:\s[^>]{0,256})?>\s{0,64}"
    r"(?:<rdf:(?:Alt|Seq|Bag)>\s{0,64}<rdf:li(?:\s[^>]{0,256})?>)?([^<]{0,2048})<"
)
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def xmp_text(raw: object) -> str:
    """An XMP packet (bytes or str, as Pillow gives it) -> at most MAX_XMP characters."""
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw[: 4 * MAX_XMP]).decode("utf-8", errors="replace")[:MAX_XMP]
    return str(raw)[:MAX_XMP]


def xmp_values(text: str, name: str, limit: int = 4) -> list[str]:
    """Up to `limit` distinct values of the property `name` (local name, any prefix)."""
    out: list[str] = []
    start = 0
    for _ in range(MAX_HITS):
        i = text.find(name, start)
        if i < 0:
            break
        start = i + len(name)
        if not _is_property_start(text, i, start):
            continue
        window = text[start : start + WINDOW]
        m = _ATTR.match(window) or _RESOURCE.match(window) or _ELEM.match(window)
        if m is None:
            continue
        value = html.unescape(next((g for g in m.groups() if g is not None), "")).strip()
        if value and value not in out:
            out.append(value)
            if len(out) >= limit:
                break
    return out


def _is_property_start(text: str, i: int, end: int) -> bool:
    """Whether the name at text[i:end] begins a property (`<p:Name`, ` p:Name=`), not a
    closing tag, a longer name, or plain text."""
    if i < 2 or text[i - 1] != ":" or (end < len(text) and text[end] in _PREFIX_CHARS):
        return False
    j, n = i - 2, 0
    while j >= 0 and n < 32 and text[j] in _PREFIX_CHARS:
        j, n = j - 1, n + 1
    return n > 0 and j >= 0 and (text[j] == "<" or text[j].isspace())
