"""Test images made on the fly (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
WHITE = (255, 255, 255)


def halves(size: tuple[int, int], left: Any, right: Any, *, mode: str = "RGB") -> Image.Image:
    """An image whose left half is ``left`` and right half ``right`` (colours in ``mode``'s terms)."""
    width, height = size
    image = Image.new(mode, size, left)
    image.paste(Image.new(mode, (width - width // 2, height), right), (width // 2, 0))
    return image


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height`` RGB, then a few bytes of pixel data.

    The file is tiny; decoding it would either allocate ``width * height * 3`` bytes or fail as truncated.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_orientation(image: Image.Image, orientation: int) -> bytes:
    """``image`` stored as a JPEG whose EXIF says how a viewer must rotate/flip it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def animated(frames: list[Image.Image], fmt: str, **options: Any) -> bytes:
    """A multi-frame GIF/WebP (or multi-page TIFF) from ``frames``."""
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)
