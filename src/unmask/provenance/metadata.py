"""Unsigned metadata that names a generator, an editor or a camera: EXIF, XMP, IPTC and
PNG text chunks (what AUTOMATIC1111, ComfyUI, InvokeAI... write), read without decoding
pixels. Every reader is bounded (see `png`, `xmp`) and none raises: a part that cannot be
read becomes a note."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO

from unmask.provenance.png import PNG_SIGNATURE, XMP_KEY, read_png
from unmask.provenance.result import MAX_HINTS, Hint, clip
from unmask.provenance.vocab import SD_PARAMETERS, describe_source, known_tool, source_type
from unmask.provenance.xmp import xmp_text, xmp_values

# PNG text keywords that front ends write, and what they mean.
_PNG_GENERATOR_KEYS = {
    "parameters": "Stable Diffusion",  # AUTOMATIC1111, Forge, SD.Next
    "invokeai_metadata": "InvokeAI",
    "invokeai_graph": "InvokeAI",
    "sd-metadata": "InvokeAI",
    "Dream": "InvokeAI",
    "fooocus_scheme": "Fooocus",
}
_PNG_COMFY_KEYS = ("prompt", "workflow")  # ComfyUI: JSON graphs
# Free-text keywords recorded even when they name no known tool.
_PNG_TEXT_KEYS = {"Software", "Description", "Comment", "Author", "Source", "Title", "Copyright"}
_EXIF_TEXT = {0x0131: "Software", 0x010E: "ImageDescription", 0x013B: "Artist"}
_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286
_IPTC = {
    (2, 65): "OriginatingProgram",
    (2, 80): "By-line",
    (2, 110): "Credit",
    (2, 115): "Source",
    (2, 120): "Caption",
}


@dataclass
class Metadata:
    hints: list[Hint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    c2pa_marker: bool = False  # a C2PA store seen (caBX chunk, APP11 JUMBF)
    c2pa_bytes: int = 0  # PNG: size of the caBX chunks
    format: str = ""  # "PNG", or Pillow's name for the format ("JPEG", "WEBP"...)
    complete: bool = False  # the container's headers were read through (PNG: to IEND)

    def add(self, hint: Hint | None) -> None:
        if hint is None or len(self.hints) >= MAX_HINTS:
            return
        if all((h.field, h.value) != (hint.field, hint.value) for h in self.hints):
            self.hints.append(hint)


def read_metadata(fp: BinaryIO) -> Metadata:
    """The hints in the file open in `fp` (binary, seekable). Never raises."""
    meta = Metadata()
    try:
        fp.seek(0)
        if fp.read(8) == PNG_SIGNATURE:
            _from_png(fp, meta)
        else:
            _from_pillow(fp, meta)
    except Exception as exc:  # a hostile file: say so, keep what was read
        meta.notes.append(clip(f"metadata: not fully read ({type(exc).__name__}: {exc})", 160))
    return meta


def hint_for(field_name: str, value: Any, record_plain: bool = True) -> Hint | None:
    """A hint for one metadata value: a generator or editor it names, A1111-style Stable
    Diffusion parameters, else plain text (when `record_plain`)."""
    text = _text(value)
    if not text:
        return None
    if SD_PARAMETERS.search(text[:65536]):
        return Hint(field_name, clip(text), "generator", "Stable Diffusion")
    tool = known_tool(text)
    if tool is not None:
        return Hint(field_name, clip(text), tool[0], tool[1])
    return Hint(field_name, clip(text)) if record_plain else None


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[:65536]).decode("utf-8", errors="replace")
    elif isinstance(value, (list, tuple)):
        value = " ".join(_text(v) for v in value[:8])
    return str(value).replace("\x00", " ").strip()


# ---------------------------------------------------------------- PNG


def _from_png(fp: BinaryIO, meta: Metadata) -> None:
    png = read_png(fp)
    meta.format = "PNG"
    meta.complete = png.complete
    meta.notes += png.notes
    meta.c2pa_bytes = png.c2pa_bytes
    meta.c2pa_marker = png.c2pa_bytes > 0
    for key, text in png.texts:
        if key == XMP_KEY:
            _from_xmp(text, meta)
        elif key in _PNG_GENERATOR_KEYS:
            meta.add(Hint(f"png:{key}", clip(text), "generator", _PNG_GENERATOR_KEYS[key]))
        elif key in _PNG_COMFY_KEYS and text.lstrip().startswith("{"):
            meta.add(Hint(f"png:{key}", clip(text), "generator", "ComfyUI"))
        else:
            meta.add(hint_for(f"png:{clip(key, 40)}", text, key in _PNG_TEXT_KEYS))
    if png.exif:
        from PIL import Image

        def exif() -> None:
            block = Image.Exif()
            block.load(png.exif)
            _from_exif(block, meta)

        _safely(meta, "EXIF", exif)


# ---------------------------------------------------------------- Pillow formats


def _from_pillow(fp: BinaryIO, meta: Metadata) -> None:
    from PIL import Image, UnidentifiedImageError

    fp.seek(0)
    try:
        im = Image.open(fp)  # lazy: headers and markers, no pixel is decoded
    except UnidentifiedImageError:
        return  # a video or a format Pillow does not read: no image metadata
    with im:
        meta.format = im.format or ""
        meta.complete = True  # Pillow parsed the headers (a JPEG's: every marker up to SOS)
        meta.c2pa_marker = any(
            m == "APP11" and d[:2] == b"JP" for m, d in getattr(im, "applist", [])[:256]
        )
        # each part on its own: a broken EXIF block does not hide the XMP beside it
        _safely(meta, "EXIF", lambda: _from_exif(im.getexif(), meta))
        if im.info.get("xmp"):
            _safely(meta, "XMP", lambda: _from_xmp(xmp_text(im.info["xmp"]), meta))
        if im.format in ("JPEG", "TIFF"):
            _safely(meta, "IPTC", lambda: _from_iptc(im, meta))
        comment = im.info.get("comment")  # JPEG COM marker, GIF comment
        if comment:
            meta.add(hint_for(f"{(im.format or 'image').lower()}:comment", comment))


def _safely(meta: Metadata, what: str, fn: Any) -> None:
    try:
        fn()
    except Exception as exc:
        meta.notes.append(clip(f"{what}: not read ({type(exc).__name__}: {exc})", 160))


def _from_iptc(im: Any, meta: Metadata) -> None:
    from PIL import IptcImagePlugin

    for key, value in (IptcImagePlugin.getiptcinfo(im) or {}).items():
        if key in _IPTC:
            meta.add(hint_for(f"iptc:{_IPTC[key]}", value))


def _from_exif(exif: Any, meta: Metadata) -> None:
    if not exif:
        return
    make, model = _text(exif.get(0x010F) or ""), _text(exif.get(0x0110) or "")
    for tag, name in _EXIF_TEXT.items():
        if tag in exif:
            meta.add(hint_for(f"exif:{name}", exif.get(tag)))
    if make or model:
        # model names usually repeat the make ("Canon" + "Canon EOS R5")
        camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}"
        meta.add(Hint("exif:Make/Model", clip(camera), "camera", clip(camera, 60)))
    comment = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if comment:
        meta.add(hint_for("exif:UserComment", _user_comment(comment)))


def _user_comment(raw: Any) -> str:
    """EXIF UserComment: an 8-byte charset code, then the text (AUTOMATIC1111 writes its
    parameters here in JPEG and WebP files, as UNICODE, i.e. UTF-16)."""
    if not isinstance(raw, (bytes, bytearray)):
        return _text(raw)
    code, body = bytes(raw[:8]), bytes(raw[8 : 8 + 131072])
    if code.startswith(b"UNICODE"):
        # big-endian by the standard; some writers use little-endian: keep the readable one
        be = body.decode("utf-16-be", errors="replace")
        le = body.decode("utf-16-le", errors="replace")
        return be if _ascii_share(be) >= _ascii_share(le) else le
    return body.decode("utf-8", errors="replace")


def _ascii_share(s: str) -> float:
    return sum(c < "\x80" for c in s[:2000]) / max(1, min(len(s), 2000))


# ---------------------------------------------------------------- XMP


def _from_xmp(text: str, meta: Metadata) -> None:
    for uri in xmp_values(text, "DigitalSourceType"):
        short = source_type(uri)
        note = f"{describe_source(short)} (unsigned)"
        meta.add(Hint("xmp:DigitalSourceType", clip(short), "source_type", note))
    for name in ("CreatorTool", "Credit", "softwareAgent"):
        for value in xmp_values(text, name):
            meta.add(hint_for(f"xmp:{name}", value, record_plain=name != "softwareAgent"))
    for url in xmp_values(text, "provenance", limit=1):  # dcterms:provenance: a remote store
        meta.add(Hint("xmp:provenance", clip(url), "c2pa_remote", "C2PA manifest at a URL"))
