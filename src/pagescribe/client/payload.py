"""Images in, request body out: read and verify each image, then fit the body under the payload limit.

SageMaker real-time endpoints refuse request bodies over 6 MB, and base64 makes an image a third bigger, so
a 4.5 MB page scan already fails there. Images are sent as they are (their own bytes, nothing re-encoded)
when they fit; otherwise the biggest ones are downsized, keeping the aspect ratio, until the whole body fits,
and ``ImageDownsizedWarning`` says so. Every image is decoded once here, with the server's own decoder, so
a corrupt or unsupported file is a clear error naming the file before anything is sent.
"""

from __future__ import annotations

import base64
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pagescribe.errors import ImageError, PayloadTooLarge
from pagescribe.images import ImageLimits, decode_image, encode_image, image_from_pil, to_pil
from pagescribe.types import ImageInput

#: SageMaker's real-time InvokeEndpoint limit ("6 MB"), read as decimal megabytes to be safe either way.
DEFAULT_PAYLOAD_LIMIT = 6_000_000
#: Below this longer side a page is no longer worth sending; the request is refused instead.
MIN_SIDE = 256
#: What the client accepts as one image: a file path, encoded bytes, a Pillow image or a decoded image.
ImageLike = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | ImageInput

# The client checks files but leaves sizing to the server: no byte cap (the payload limit is the cap), no
# downscaling; the pixel cap guards against decompression bombs in the client process.
_CHECK_LIMITS = ImageLimits(max_bytes=2**40, max_side=None)
_KEEP_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


class ImageDownsizedWarning(UserWarning):
    """An image was downsized (or re-encoded) to fit the request under the payload limit."""


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """One image ready to send: the bytes to encode as base64, and the decoded pixels for resizing."""

    source: str
    data: bytes
    format: str
    pixels: ImageInput


def is_single_image(value: object) -> bool:
    """Whether ``value`` is one image (as opposed to a sequence of them)."""
    return isinstance(value, str | os.PathLike | bytes | bytearray | memoryview | Image.Image | ImageInput)


def as_image_list(images: ImageLike | Sequence[ImageLike]) -> tuple[ImageLike, ...]:
    """One image or several, as a tuple."""
    if is_single_image(images):
        return (images,)  # type: ignore[return-value]  # narrowed by is_single_image
    return tuple(images)  # type: ignore[arg-type]


def label(image: ImageLike, index: int) -> str:
    """How errors and warnings name an image: its path, else its position."""
    if isinstance(image, str | os.PathLike):
        return os.fspath(image)
    return f"image {index + 1}"


def read_image_bytes(image: str | os.PathLike[str]) -> bytes:
    """A file's bytes; a missing or unreadable file is an ``ImageError`` naming it."""
    path = Path(image)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path}: is a directory, not an image file") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc


def prepare(image: ImageLike, *, index: int) -> PreparedImage:
    """Read and verify one image; encoded inputs keep their bytes, decoded ones become PNG."""
    source = label(image, index)
    if isinstance(image, ImageInput):
        return PreparedImage(source, encode_image(image), "PNG", image)
    if isinstance(image, Image.Image):
        pixels = image_from_pil(image, max_side=None)
        return PreparedImage(source, encode_image(pixels), "PNG", pixels)
    data = read_image_bytes(image) if isinstance(image, str | os.PathLike) else bytes(image)
    pixels = decode_image(data, limits=_CHECK_LIMITS, source=source)
    fmt = _format_of(data)
    if fmt not in _KEEP_FORMATS:
        # BMP, TIFF and GIF travel as PNG: lossless, far smaller, and one frame is all the model sees.
        return PreparedImage(source, encode_image(pixels), "PNG", pixels)
    return PreparedImage(source, data, fmt, pixels)


def _format_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data[8:12] == b"WEBP":
        return "WEBP"
    return "OTHER"


def build_body(
    prompt: str,
    images: Sequence[ImageLike],
    parameters: dict[str, Any],
    *,
    payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT,
) -> bytes:
    """The format-A request body (one dialog, one user turn) that fits ``payload_limit`` bytes.

    Without ``<ImageHere>`` markers in ``prompt`` the server puts the images before the text (LLaVA's
    layout); with markers, each image goes where its marker is.
    """
    prepared = [prepare(image, index=i) for i, image in enumerate(images)]
    if payload_limit is not None:
        overhead = len(_body(prompt, ["" for _ in prepared], parameters))
        prepared = fit(prepared, base64_budget=payload_limit - overhead, payload_limit=payload_limit)
    return _body(prompt, [base64.b64encode(p.data).decode("ascii") for p in prepared], parameters)


def _body(prompt: str, encoded: list[str], parameters: dict[str, Any]) -> bytes:
    message: dict[str, Any] = {"role": "user", "content": prompt}
    if len(encoded) == 1:
        message["image"] = encoded[0]
    elif encoded:
        message["images"] = encoded
    body = {"inputs": [[message]], "parameters": parameters}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def base64_size(size: int) -> int:
    return 4 * math.ceil(size / 3)


def fit(images: list[PreparedImage], *, base64_budget: int, payload_limit: int) -> list[PreparedImage]:
    """Shrink the images that do not fit, sharing the budget fairly (small images keep their bytes)."""
    if base64_budget < 0 or base64_budget < 4 * len(images):
        raise PayloadTooLarge(
            f"the request is over the payload limit of {_mb(payload_limit)} before any image is added "
            "(is the prompt that long?)",
            param="prompt",
        )
    fitted = list(images)
    left, remaining = base64_budget, len(images)
    # Water-filling: visit images from small to big; each takes what it needs up to an equal share of what
    # is left, so the budget small images do not use goes to the big ones.
    for index in sorted(range(len(images)), key=lambda i: len(images[i].data)):
        share = left // remaining
        image = images[index]
        if base64_size(len(image.data)) > share:
            fitted[index] = shrink(image, max_bytes=share // 4 * 3, payload_limit=payload_limit)
        left -= base64_size(len(fitted[index].data))
        remaining -= 1
    return fitted


def shrink(image: PreparedImage, *, max_bytes: int, payload_limit: int) -> PreparedImage:
    """``image`` re-encoded, downscaled as little as needed (aspect kept) to be at most ``max_bytes``."""
    fmt = "JPEG" if image.format in ("JPEG", "WEBP") else "PNG"
    pil = to_pil(image.pixels)
    width, height = pil.size
    # Encoded size grows with the area, so the side scales with the square root; a re-encode alone may do.
    scale = 1.0 if fmt != image.format else min(1.0, math.sqrt(max_bytes / len(image.data)) * 0.95)
    for _ in range(12):
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if max(size) < MIN_SIDE:
            break
        resized = pil if size == pil.size else pil.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        data = encode_image(resized, format=fmt)
        if len(data) <= max_bytes:
            _warn(image, size, data, fmt, payload_limit=payload_limit)
            return PreparedImage(image.source, data, fmt, image.pixels)
        scale *= min(0.95, math.sqrt(max_bytes / len(data)) * 0.95)
    raise PayloadTooLarge(
        f"{image.source}: cannot fit the image under the payload limit of {_mb(payload_limit)} "
        f"without shrinking it below {MIN_SIDE} pixels; raise the limit or send fewer images",
        param="image",
    )


def _warn(image: PreparedImage, size: tuple[int, int], data: bytes, fmt: str, *, payload_limit: int) -> None:
    was = f"{image.pixels.width}x{image.pixels.height} {image.format} ({_mb(len(image.data))})"
    now = f"{size[0]}x{size[1]} {fmt} ({_mb(len(data))})"
    action = "downsized" if size != (image.pixels.width, image.pixels.height) else "re-encoded"
    warnings.warn(
        ImageDownsizedWarning(
            f"{image.source}: {was} does not fit the {_mb(payload_limit)} payload limit once "
            f"base64-encoded; sent it {action} to {now}"
        ),
        stacklevel=2,
    )


def _mb(size: int) -> str:
    return f"{size / 1e6:.3g} MB"
