"""Image decoding and format sniffing: every kind of bad or odd input gives a clear result."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from unmask.data.imageio import load_image, load_image_bytes, load_image_with_format, sniff_kind
from unmask.errors import BadInputError, UnmaskError


def _rgb(w: int = 32, h: int = 24, seed: int = 0) -> Image.Image:
    arr = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    return Image.fromarray(arr)


def _save(tmp_path, name: str, im: Image.Image, fmt: str, **kw):
    p = tmp_path / name
    im.save(p, format=fmt, **kw)
    return p


def _reason(path, **kw) -> str:
    with pytest.raises(BadInputError) as ei:
        load_image(path, **kw)
    assert isinstance(ei.value, UnmaskError)
    assert str(path) in str(ei.value)
    return ei.value.reason


@pytest.mark.parametrize(
    "fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif")]
)
def test_formats_load_as_rgb_uint8(tmp_path, fmt, ext):
    p = _save(tmp_path, f"a.{ext}", _rgb(), fmt)
    assert sniff_kind(p) == "image"
    arr, found = load_image_with_format(p)
    assert arr.shape == (24, 32, 3) and arr.dtype == np.uint8
    assert found == fmt


def test_format_from_content_not_extension(tmp_path):
    p = _save(tmp_path, "really_webp.jpg", _rgb(), "WEBP")
    arr, fmt = load_image_with_format(p)
    assert fmt == "WEBP" and arr.shape == (24, 32, 3)
    q = _save(tmp_path, "png_named.mp4", _rgb(), "PNG")
    assert sniff_kind(q) == "image"


def test_sniff_video_and_other(tmp_path):
    cv2 = pytest.importorskip("cv2")
    avi = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32))
    for i in range(3):
        w.write(np.full((32, 32, 3), i * 40, np.uint8))
    w.release()
    v = avi.replace(tmp_path / "clip.bin")  # the extension says nothing
    assert sniff_kind(v) == "video"
    t = tmp_path / "notes.txt"
    t.write_text("hello, not an image")
    assert sniff_kind(t) is None
    with pytest.raises(BadInputError) as ei:
        sniff_kind(tmp_path / "nope.png")
    assert ei.value.reason == "missing"


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "RGBA", "LA", "I;16", "I", "F", "YCbCr"])
def test_modes_become_rgb(tmp_path, mode):
    base = _rgb(16, 16)
    if mode in ("I;16", "I", "F"):
        arr = (np.arange(256, dtype=np.float64).reshape(16, 16) * 257).astype(
            np.uint16 if mode == "I;16" else (np.int32 if mode == "I" else np.float32)
        )
        if mode == "F":
            arr = arr / 65535.0
        im = Image.fromarray(arr, mode=mode) if mode != "I;16" else Image.fromarray(arr)
        fmt = "TIFF"
    else:
        im = base.convert(mode)
        fmt = "JPEG" if mode in ("CMYK", "L", "YCbCr") else ("TIFF" if mode == "LA" else "PNG")
    p = _save(tmp_path, f"m.{fmt.lower()}", im, fmt)
    arr = load_image(p)
    assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8
    if mode in ("I;16", "I", "F"):  # 16-bit/float ramps are scaled to 0..255, not clipped
        assert arr.max() >= 250 and arr.min() <= 5


def test_sixteen_bit_png_scaled(tmp_path):
    arr16 = np.full((8, 8), 65535, np.uint16)
    arr16[0, 0] = 0
    p = tmp_path / "deep.png"
    Image.fromarray(arr16).save(p)
    out = load_image(p)
    assert out[1, 1, 0] == 255 and out[0, 0, 0] == 0


def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    p = tmp_path / "t.png"
    Image.fromarray(arr, "RGBA").save(p)
    assert (load_image(p) == 255).all()


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (6, 6), 0)
    im.putpalette([10, 20, 30] * 256)
    im.info["transparency"] = 0
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    assert load_image(p).shape == (6, 6, 3)


def test_exif_orientation_applied(tmp_path):
    im = _rgb(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    p = tmp_path / "rot.jpg"
    im.save(p, format="JPEG", exif=exif)
    arr = load_image(p)
    assert arr.shape == (40, 20, 3)


def test_missing_empty_text(tmp_path):
    assert _reason(tmp_path / "missing.jpg") == "missing"
    z = tmp_path / "zero.jpg"
    z.write_bytes(b"")
    assert _reason(z) == "empty"
    t = tmp_path / "text.jpg"
    t.write_text("definitely not a jpeg")
    assert _reason(t) == "not_an_image"
    assert _reason(tmp_path) == "not_a_regular_file"  # a folder is not a file


def test_corrupt_and_truncated(tmp_path):
    c = tmp_path / "corrupt.jpg"
    c.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    assert _reason(c) == "corrupt"
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        _rgb(64, 64).save(buf, format=fmt)
        p = tmp_path / f"trunc.{fmt.lower()}"
        p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        assert _reason(p) == "truncated"


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(60_000, 60_000))  # 3.6 G pixels claimed, no data
    assert _reason(p) == "too_large"
    q = tmp_path / "medium.png"
    q.write_bytes(_png_header_only(12_000, 10_000))  # 120 M > default 100 M
    assert _reason(q) == "too_large"
    r = _save(tmp_path, "small.png", _rgb(50, 40), "PNG")
    assert _reason(r, max_pixels=1999) == "too_large"
    assert load_image(r, max_pixels=2000).shape == (40, 50, 3)


def test_load_image_bytes(tmp_path):
    buf = io.BytesIO()
    _rgb().save(buf, format="WEBP")
    assert load_image_bytes(buf.getvalue()).shape == (24, 32, 3)
    with pytest.raises(BadInputError) as ei:
        load_image_bytes(b"", name="up.jpg")
    assert ei.value.reason == "empty" and ei.value.path == "up.jpg"
    with pytest.raises(BadInputError) as ei:
        load_image_bytes(b"GIF89a" + b"\x00" * 20, name="x")
    assert ei.value.reason == "corrupt"
    with pytest.raises(BadInputError) as ei:
        load_image_bytes(b"hello world", name="x")
    assert ei.value.reason == "not_an_image"
