"""Bytes in, safe RGB image out.

Pillow is the only parser of untrusted image bytes in pagescribe: the engine hands libmtmd raw RGB pixels, so
no other decoder ever sees user input. Every entry point here checks the encoded size, opens the image with
Pillow restricted to the supported formats, checks the pixel count read from the header *before* decoding,
then decodes, applies the EXIF orientation, flattens transparency onto white, converts to 8-bit RGB and
downscales to ``max_side``. Failures become ``ImageError`` (400) or ``ImageTooLarge`` (413) with a message
that starts with the caller's ``source`` label and names the cause.

Nothing here touches Pillow's global settings (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``), and every
call works on its own objects, so the functions are safe to call from many threads at once.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import (
    BmpImagePlugin,  # noqa: F401  (imported to register the plugin, so Image.open never runs init())
    GifImagePlugin,  # noqa: F401
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from pagescribe.errors import ImageError, ImageTooLarge
from pagescribe.types import ImageInput

#: Pillow format ids accepted from users; every other plugin is never even tried on user bytes.
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
_SUPPORTED_NAMES = "PNG, JPEG, WebP, GIF, BMP or TIFF"

# What Pillow raises on malformed input (the set its own fuzz tests accept), plus the parse errors that
# some plugins let escape.
# Warning: Pillow warns about damaged data (bad EXIF, odd chunks); under an "error" warnings filter those
# arrive as exceptions and are, for us, just more damaged input.
_PILLOW_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    NotImplementedError,
    OverflowError,
    Warning,
)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa"})
# Modes that LANCZOS resizes directly, so big images shrink before the (costlier) conversion to RGB.
_RESIZE_FIRST = frozenset({"L", "LA", "RGB", "RGBA"})
_SAVE_OPTIONS: dict[str, dict[str, int]] = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90}}


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied to untrusted images.

    ``max_bytes`` bounds the encoded size, ``max_pixels`` the width * height declared by the header (checked
    before any pixel is decoded), and images whose longer side exceeds ``max_side`` are downscaled to it,
    keeping the aspect ratio (``None`` keeps the decoded size).
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 64_000_000
    max_side: int | None = 2048

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError("max_bytes and max_pixels must be positive")
        if self.max_side is not None and self.max_side < 1:
            raise ValueError("max_side must be positive or None")


# ---------------------------------------------------------------------------------------------- base64


_URLSAFE_TO_STD = str.maketrans("-_", "+/")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=\-_\s]")


def b64decode_lenient(text: str, *, source: str = "image", param: str | None = None) -> bytes:
    """Decode base64 in the standard or URL-safe alphabet, padding optional, whitespace ignored.

    Any other character is an error (``ImageError``), never silently dropped.
    """
    return _b64decode(_compact(text), source=source, param=param)


def _compact(text: str) -> str:
    # str.split() with no argument drops every run of whitespace, newlines included, and is fast in C.
    return "".join(text.split())


def _b64decode(compact: str, *, source: str, param: str | None) -> bytes:
    body = compact.rstrip("=").translate(_URLSAFE_TO_STD)
    if len(body) % 4 == 1:
        raise ImageError(
            f"{source}: not valid base64: {len(body)} characters cannot be base64 (was it cut short?)",
            param=param,
        )
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(f"{source}: not valid base64: {_b64_problem(compact)}", param=param) from exc


def _b64_problem(compact: str) -> str:
    bad = _NOT_BASE64.search(compact)
    if bad is not None:
        return f"unexpected character {bad.group()!r} at position {bad.start()} (whitespace not counted)"
    if "=" in compact.rstrip("="):
        return "'=' padding in the middle of the data"
    if ("-" in compact or "_" in compact) and ("+" in compact or "/" in compact):
        return "mixes the standard and URL-safe alphabets"
    return "malformed data"


def _data_uri_payload(text: str, *, source: str, param: str | None) -> str:
    """The base64 part of a ``data:image/...;base64,`` URI, or ``text`` itself when it is not a data URI."""
    stripped = text.lstrip()
    if stripped[:5].lower() != "data:":
        return text
    header, comma, payload = stripped[5:].partition(",")
    if not comma:
        raise ImageError(f"{source}: data URI has no comma between its header and its data", param=param)
    media_type, *options = (part.strip().lower() for part in header.split(";"))
    if not media_type.startswith("image/"):
        shown = media_type[:60] or "none (text/plain)"
        raise ImageError(f"{source}: data URI media type is {shown!r}, expected image/*", param=param)
    if media_type == "image/svg+xml":
        raise ImageError(f"{source}: {_SVG_MESSAGE}", param=param)
    if "base64" not in options:
        raise ImageError(f"{source}: data URI is not base64-encoded (expected ';base64,')", param=param)
    # Browsers percent-encode data URIs now and then; base64 itself never contains '%'.
    return urllib.parse.unquote(payload) if "%" in payload else payload


def decode_base64_image(
    text: str, *, limits: ImageLimits = ImageLimits(), source: str = "image", param: str | None = None
) -> ImageInput:
    """Decode a base64 string or a ``data:image/...;base64,`` URI into a verified RGB image."""
    compact = _compact(_data_uri_payload(text, source=source, param=param))
    if not compact:
        raise ImageError(f"{source}: image is empty (no base64 data)", param=param)
    # Reject before decoding: the decoded size is known from the text length.
    approx_bytes = len(compact.rstrip("=")) * 3 // 4
    if approx_bytes > limits.max_bytes:
        raise ImageTooLarge(_too_many_bytes(approx_bytes, limits, source), param=param)
    data = _b64decode(compact, source=source, param=param)
    return decode_image(data, limits=limits, source=source, param=param)


# ---------------------------------------------------------------------------------------------- decoding


def decode_image(
    data: bytes, *, limits: ImageLimits = ImageLimits(), source: str = "image", param: str | None = None
) -> ImageInput:
    """Decode untrusted encoded image bytes (first frame / first page) into a verified RGB image."""
    with _open(data, limits=limits, source=source, param=param) as im:
        return _decode_current(im, limits=limits, source=source, param=param)


def iter_image_pages(
    data: bytes, *, limits: ImageLimits = ImageLimits(), source: str = "image", param: str | None = None
) -> Iterator[ImageInput]:
    """Every page of a multi-page TIFF, lazily; any other supported image yields its one (first) frame.

    Each page is checked against ``limits`` before it is decoded; page labels are ``"<source> page N"``.
    """
    with _open(data, limits=limits, source=source, param=param) as im:
        if im.format != "TIFF":
            yield _decode_current(im, limits=limits, source=source, param=param)
            return
        page = 0
        while page == 0 or _seek_page(im, page, source=source, param=param):
            label = f"{source} page {page + 1}"
            _check_pixels(im, limits=limits, source=label, param=param)
            yield _decode_current(im, limits=limits, source=label, param=param)
            page += 1


def _seek_page(im: Image.Image, page: int, *, source: str, param: str | None) -> bool:
    """Move to ``page`` (0-based) of a multi-page image; ``False`` when there is no such page."""
    with _pillow_errors("TIFF", source=f"{source} page {page + 1}", param=param):
        try:
            im.seek(page)
        except EOFError:
            return False
    return True


def load_image_file(path: str | Path, *, limits: ImageLimits = ImageLimits()) -> ImageInput:
    """Read and decode an image file (first frame / first page); errors name the file."""
    file = Path(path)
    source = str(file)
    try:
        size = file.stat().st_size
        if size > limits.max_bytes:
            raise ImageTooLarge(_too_many_bytes(size, limits, source))
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise ImageError(f"{source}: no such file") from exc
    except OSError as exc:
        raise ImageError(f"{source}: cannot read the file: {exc.strerror or exc}") from exc
    return decode_image(data, limits=limits, source=source)


@contextmanager
def _pillow_errors(what: str, *, source: str, param: str | None) -> Iterator[None]:
    """Turn what Pillow raises on hostile or broken input into pagescribe's errors."""
    try:
        yield
    except _BOMB_ERRORS as exc:
        raise ImageTooLarge(f"{source}: image is too large to decode safely: {exc}", param=param) from exc
    except MemoryError as exc:
        raise ImageTooLarge(
            f"{source}: decoding the image needs more memory than allowed", param=param
        ) from exc
    except _PILLOW_ERRORS as exc:
        raise ImageError(f"{source}: truncated or corrupt {what}: {exc}", param=param) from exc


def _open(data: bytes, *, limits: ImageLimits, source: str, param: str | None) -> ImageFile.ImageFile:
    """Check the encoded size, identify the format and read the header; no pixel data is decoded."""
    if not data:
        raise ImageError(f"{source}: image is empty (0 bytes)", param=param)
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(_too_many_bytes(len(data), limits, source), param=param)
    with _pillow_errors(_magic_format(data) or "image", source=source, param=param):
        try:
            im = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
        except UnidentifiedImageError as exc:
            raise ImageError(f"{source}: {_not_an_image(data)}", param=param) from exc
    try:
        _check_pixels(im, limits=limits, source=source, param=param)
    except ImageError:
        im.close()
        raise
    return im


def _check_pixels(im: Image.Image, *, limits: ImageLimits, source: str, param: str | None) -> None:
    width, height = im.size
    if width < 1 or height < 1:
        raise ImageError(
            f"{source}: corrupt {im.format}: the header says {width}x{height} pixels", param=param
        )
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"{source}: image is {width}x{height} = {width * height:,} pixels, "
            f"over the limit of {limits.max_pixels:,} pixels",
            param=param,
        )


def _decode_current(
    im: ImageFile.ImageFile, *, limits: ImageLimits, source: str, param: str | None
) -> ImageInput:
    """Decode the frame ``im`` is positioned on, orient it and finish it as RGB."""
    fmt = im.format or "image"
    target = _fitted_size(im.size, limits.max_side)
    if target is not None and fmt in ("JPEG", "MPO"):
        # libjpeg scales by 1/2..1/8 while decoding: big photos decode several times faster in less memory.
        im.draft(None, target)
    with _pillow_errors(fmt, source=source, param=param):
        im.load()
        _apply_exif_orientation(im)
        return _finish(im, max_side=limits.max_side)


def _apply_exif_orientation(im: Image.Image) -> None:
    # The pixels decoded fine; a damaged EXIF block should not cost the user the page.
    with suppress(*_PILLOW_ERRORS):
        ImageOps.exif_transpose(im, in_place=True)


# ---------------------------------------------------------------------------------------------- conversion


def image_from_pil(image: Image.Image, *, max_side: int | None = 2048) -> ImageInput:
    """Convert a trusted, already decoded image (e.g. a rendered PDF page) to an RGB ``ImageInput``.

    No limits and no EXIF handling: use ``decode_image`` for anything that came from a user.
    """
    return _finish(image, max_side=max_side)


def fit_image(image: ImageInput, max_side: int) -> ImageInput:
    """``image`` with its longer side brought down to ``max_side`` (LANCZOS, aspect kept); as it is when it fits."""
    if max(image.width, image.height) <= max_side:
        return image
    return _finish(to_pil(image), max_side=max_side)


def to_pil(image: ImageInput) -> Image.Image:
    """The ``ImageInput``'s pixels as a Pillow RGB image."""
    return Image.frombytes("RGB", (image.width, image.height), image.rgb)


def encode_image(image: ImageInput | Image.Image, *, format: str = "PNG") -> bytes:
    """Encode an image for sending to a server (PNG by default; JPEG and WebP at quality 90)."""
    fmt = "JPEG" if format.upper() == "JPG" else format.upper()
    if fmt not in SUPPORTED_FORMATS:
        raise ValueError(f"cannot encode {format!r}: use one of {', '.join(SUPPORTED_FORMATS)}")
    pil = to_pil(image) if isinstance(image, ImageInput) else image
    if fmt == "JPEG" and pil.mode not in ("RGB", "L"):
        pil = _to_rgb(pil)
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
    return buffer.getvalue()


def _finish(im: Image.Image, *, max_side: int | None) -> ImageInput:
    if im.mode in _RESIZE_FIRST:
        im = _downscale(im, max_side)
    rgb = _downscale(_to_rgb(im), max_side)
    return ImageInput(width=rgb.width, height=rgb.height, rgb=rgb.tobytes())


def _to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB, with transparency composited on white."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _high_depth_to_gray(im)
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im if im.mode == "RGB" else im.convert("RGB")


def _high_depth_to_gray(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grayscale to 8-bit, scaled rather than clipped.

    Pillow's own conversion clips (every 16-bit value above 255 becomes white), which ruins 16-bit scans.
    """
    pixels = np.asarray(im)
    if im.mode.startswith("I;16"):
        gray = pixels >> 8
    elif im.mode == "I":
        # 32-bit integers: treat as 16-bit data when any value needs it, else as 8-bit data.
        gray = (
            np.clip(pixels, 0, 65535) >> 8 if pixels.size and pixels.max() > 255 else np.clip(pixels, 0, 255)
        )
    else:
        finite = np.nan_to_num(pixels, nan=0.0, posinf=255.0, neginf=0.0)
        # Float images come as 0..1 or 0..255; the 0..1 ones need scaling.
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        gray = np.clip(np.rint(finite * scale), 0, 255)
    return Image.fromarray(gray.astype(np.uint8))


def _fitted_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int] | None:
    """The size that fits ``max_side`` with the same aspect ratio, or ``None`` if it already fits."""
    width, height = size
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return None
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _downscale(im: Image.Image, max_side: int | None) -> Image.Image:
    target = _fitted_size(im.size, max_side)
    if target is None:
        return im
    # reducing_gap first shrinks by an integer factor with a box filter: much faster, visually the same.
    return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


# ---------------------------------------------------------------------------------------------- messages


_SVG_MESSAGE = "SVG images are not supported: rasterize it first (for example to PNG)"
_PDF_MESSAGE = "a PDF document, not an image: render its pages first (`pagescribe describe` reads PDFs)"
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (8, b"WEBP", "WEBP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"II+\x00", "TIFF"),
    (0, b"MM\x00+", "TIFF"),
    (0, b"BM", "BMP"),
)
# Formats people send by mistake, named so the error says what the bytes are.
_KNOWN_OTHERS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x00\x00\x01\x00", "an ICO icon"),
    (0, b"\x00\x00\x02\x00", "a CUR cursor"),
    (8, b"avif", "an AVIF image"),
    (8, b"heic", "a HEIC image"),
    (8, b"heix", "a HEIC image"),
    (8, b"mif1", "a HEIF image"),
    (4, b"ftyp", "an MP4/QuickTime file"),
    (0, b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (0, b"\xffO\xffQ", "a JPEG 2000 codestream"),
    (0, b"\xff\n", "a JPEG XL image"),
    (0, b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (0, b"8BPS", "a Photoshop (PSD) file"),
    (0, b"PK\x03\x04", "a ZIP archive (or an Office document such as DOCX or PPTX)"),
    (0, b"\x1f\x8b", "gzip-compressed data"),
    (0, b"%!PS", "a PostScript/EPS file"),
)
_TEXT_CONTROL = frozenset(range(32)) - {9, 10, 12, 13}
# Base64 as text: long runs of its alphabet, broken by newlines at most (prose has spaces).
_BASE64_TEXT = re.compile(rb"(data:[^,]*,)?[A-Za-z0-9+/=\-_\r\n]{16,}")


def _magic_format(data: bytes) -> str | None:
    return next((name for offset, magic, name in _MAGIC if data[offset : offset + len(magic)] == magic), None)


def _not_an_image(data: bytes) -> str:
    """Why Pillow could not identify ``data``, as precisely as a cheap look at the first bytes allows."""
    expected = f"send {_SUPPORTED_NAMES}"
    if data.startswith(b"%PDF-"):
        return _PDF_MESSAGE
    for offset, magic, what in _KNOWN_OTHERS:
        if data[offset : offset + len(magic)] == magic:
            return f"{what} is not a supported image format; {expected}"
    head = data[:1024]
    if not _TEXT_CONTROL.intersection(head):
        lowered = head.lower()
        if b"<svg" in lowered:
            return _SVG_MESSAGE
        if b"<html" in lowered or b"<!doctype html" in lowered:
            return f"an HTML page, not an image; {expected}"
        if _BASE64_TEXT.fullmatch(head):
            return "base64 text, not image bytes: decode it first (or send it as a base64 string)"
        return f"text, not an image; {expected}"
    fmt = _magic_format(data)
    if fmt is not None:
        return f"truncated or corrupt {fmt}: Pillow cannot read its header"
    return f"not an image in a supported format; {expected}"


def _too_many_bytes(size: int, limits: ImageLimits, source: str) -> str:
    return f"{source}: image is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes"
