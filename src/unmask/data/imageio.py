"""Read any still image into an RGB uint8 array, or say clearly why not.

The real format is found from the file's bytes (magic numbers, then Pillow), never from its
extension: a WEBP named `.jpg` is read as WEBP. Every failure is a `BadInputError` with a
short reason tag that batch jobs record in `rejected.csv`:

    missing       the path does not exist
    not_a_regular_file  a FIFO, socket, device or folder (never opened: reading one can
                  block forever or never end)
    unreadable    permission denied or another read error
    bad_file_name the name is not valid UTF-8 (it could not be written to a CSV or shown)
    empty         zero bytes
    not_an_image  neither an image nor a video Pillow/OpenCV can read
    too_large     more than `max_pixels` pixels (checked from the header, before decoding)
    truncated     the file ends before the image data does
    corrupt       the header says image but the data does not decode

Conversions: EXIF orientation applied; grayscale, 1-bit, palette, CMYK, YCbCr/LAB and 16-bit
or float images become 8-bit RGB; transparency is composited onto white; multi-frame files
(animated GIF/WEBP, multi-page TIFF) give their first frame.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np

from unmask.data.spec import PreprocessSpec
from unmask.errors import BadInputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")

# ISO-BMFF brands (bytes 8..12 after "ftyp") that are still images, not videos.
_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"heif", b"mif1", b"msf1", b"hevc")
_SNIFF_BYTES = 64


def sniff_bytes(head: bytes) -> str | None:
    """`"image"`, `"video"` or None from a file's first bytes (magic numbers only)."""
    if len(head) < 4:
        return None
    if head[:3] == b"\xff\xd8\xff":  # JPEG
        return "image"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[:2] == b"BM":
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF / BigTIFF
        return "image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image"
    if head[4:8] == b"ftyp":  # MP4 / MOV / 3GP / AVIF / HEIC
        return "image" if head[8:12] in _IMAGE_BRANDS else "video"
    if head[4:8] in (b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):  # old QuickTime
        return "video"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM
        return "video"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG-PS / MPEG-1
        return "video"
    return None


def printable(path: str | Path) -> str:
    """`path` as text that any UTF-8 writer accepts: bytes that are not UTF-8 (kept as
    surrogates by Python) are shown as `\\xNN`."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _kind_of_special(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def file_problem(path: str | Path) -> tuple[str, str] | None:
    """Why `path` cannot be read as a file, before opening it: (reason, detail) or None.
    Symlinks are followed (a link to /dev/zero is a device)."""
    p = str(path)
    if printable(p) != p:
        return "bad_file_name", "the file name is not valid UTF-8"
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            return "missing", "broken symbolic link"
        return "missing", "no such file"
    except PermissionError:
        return "unreadable", "permission denied"
    except OSError as exc:
        return "unreadable", exc.strerror or exc.__class__.__name__
    if stat.S_ISDIR(st.st_mode):
        try:
            with os.scandir(p):
                pass
        except PermissionError:
            return "unreadable", "a folder that cannot be listed (permission denied)"
        except OSError as exc:
            return "unreadable", f"a folder that cannot be listed ({exc.strerror})"
        return "not_a_regular_file", "a folder"
    if not stat.S_ISREG(st.st_mode):
        return "not_a_regular_file", _kind_of_special(st.st_mode)
    return None


def open_regular(path: str | Path):
    """Open a regular file for reading, or raise `BadInputError` (missing, unreadable,
    not_a_regular_file, bad_file_name, empty). Opened without blocking and checked on the
    open descriptor, so a file swapped for a FIFO after the check cannot hang the reader."""
    problem = file_problem(path)
    if problem is not None:
        raise BadInputError(printable(path), *problem)
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except PermissionError:
        raise BadInputError(printable(path), "unreadable", "permission denied") from None
    except FileNotFoundError:
        raise BadInputError(printable(path), "missing", "no such file") from None
    except OSError as exc:
        raise BadInputError(printable(path), "unreadable", exc.strerror or "") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError(printable(path), "not_a_regular_file", _kind_of_special(st.st_mode))
        if st.st_size == 0:
            raise BadInputError(printable(path), "empty", "zero bytes")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sniff_kind(path: str | Path) -> str | None:
    """What a file really is: `"image"`, `"video"`, or None (something else).

    Magic numbers first; files without a known signature (e.g. TGA, PPM) are tried with
    Pillow. Raises `BadInputError` when the file cannot be read at all (see `open_regular`):
    a FIFO or device is never read, an unreadable file is `unreadable`, not "not an image".
    """
    with open_regular(path) as fh:
        try:
            head = fh.read(_SNIFF_BYTES)
        except OSError as exc:
            raise BadInputError(printable(path), "unreadable", exc.strerror or "") from None
        kind = sniff_bytes(head)
        if kind is not None or not head:
            return kind
        from PIL import Image

        try:
            fh.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(fh) as im:
                    im.size  # noqa: B018 - header parsed
            return "image"
        except Exception:
            return None


def _to_rgb(im) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB."""
    from PIL import Image

    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if arr.ndim == 3:
            arr = arr[..., 0]
        arr = arr.astype(np.float64)
        if mode == "F":
            hi = float(np.nanmax(arr)) if arr.size else 0.0
            scale = 255.0 if hi <= 1.0 else (255.0 / 65535.0 if hi > 255.0 else 1.0)
        else:
            hi = float(arr.max()) if arr.size else 0.0
            scale = 255.0 / 65535.0 if hi > 255.0 else 1.0
        gray = np.clip(np.nan_to_num(arr * scale), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    arr = np.asarray(im)
    if arr.dtype != np.uint8:  # e.g. 48-bit RGB TIFF surfaced by some Pillow builds
        arr = (arr.astype(np.float64) / 257.0).round().astype(np.uint8)
    return np.ascontiguousarray(arr)


def _decode(fp, name: str, head: bytes, max_pixels: int) -> tuple[np.ndarray, str]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    looks_like_image = sniff_bytes(head) == "image"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: we check max_pixels
        try:
            im = Image.open(fp)
        except Image.DecompressionBombError as exc:
            raise BadInputError(name, "too_large", str(exc).split(".")[0]) from None
        except UnidentifiedImageError:
            if looks_like_image:
                raise BadInputError(name, "corrupt", "header not readable") from None
            if sniff_bytes(head) == "video":
                raise BadInputError(name, "not_an_image", "this is a video") from None
            raise BadInputError(name, "not_an_image", "unknown file format") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise BadInputError(name, "corrupt", _short(exc)) from None
        with im:
            fmt = im.format or "?"
            w, h = im.size
            if w <= 0 or h <= 0:
                raise BadInputError(name, "corrupt", f"image size {w}x{h}")
            if w * h > max_pixels:
                raise BadInputError(
                    name, "too_large", f"{w}x{h} = {w * h} pixels > max_pixels {max_pixels}"
                )
            try:
                im.load()
            except OSError as exc:
                msg = str(exc).lower()
                if "truncated" in msg or "premature end" in msg or "unexpected end" in msg:
                    raise BadInputError(name, "truncated", _short(exc)) from None
                raise BadInputError(name, "corrupt", _short(exc)) from None
            except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
                raise BadInputError(name, "corrupt", _short(exc)) from None
            try:
                im2 = ImageOps.exif_transpose(im)
            except Exception:  # broken EXIF block: keep the pixels as stored
                im2 = im
            try:
                arr = _to_rgb(im2)
            except (OSError, ValueError) as exc:
                raise BadInputError(name, "corrupt", _short(exc)) from None
    return arr, fmt


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:200]


def load_image_with_format(
    path: str | Path, max_pixels: int = PreprocessSpec.max_pixels
) -> tuple[np.ndarray, str]:
    """`load_image` plus the real format name Pillow found (`JPEG`, `WEBP`, ...)."""
    with open_regular(path) as fh:
        try:
            head = fh.read(_SNIFF_BYTES)
            fh.seek(0)
            return _decode(fh, printable(path), head, max_pixels)
        except PermissionError:
            raise BadInputError(printable(path), "unreadable", "permission denied") from None


def load_image(path: str | Path, max_pixels: int = PreprocessSpec.max_pixels) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF-transposed. Raises `BadInputError(path, reason)`."""
    return load_image_with_format(path, max_pixels)[0]


def load_image_bytes(
    data: bytes, name: str = "upload", max_pixels: int = PreprocessSpec.max_pixels
) -> np.ndarray:
    """Like `load_image` for bytes already in memory (HTTP uploads)."""
    if not data:
        raise BadInputError(name, "empty", "zero bytes")
    return _decode(io.BytesIO(data), name, bytes(data[:_SNIFF_BYTES]), max_pixels)[0]


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB uint8 array as PNG (lossless), atomically (tmp file + rename)."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG", compress_level=3)
    tmp.replace(p)
