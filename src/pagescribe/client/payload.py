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
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pagescribe.errors import InvalidRequest, PayloadTooLarge
from pagescribe.images import encode_image, to_pil
from pagescribe.types import GenerationRequest, ImageInput, ImagePart, Message

#: SageMaker's real-time InvokeEndpoint limit ("6 MB"), read as decimal megabytes to be safe either way.
DEFAULT_PAYLOAD_LIMIT = 6_000_000
#: Below this longer side a page is no longer worth sending; the request is refused instead.
MIN_SIDE = 256
#: The marker format A places an image with; request text cannot hold it (the wire has no escape for it).
IMAGE_MARKER = "<ImageHere>"
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


def prepare(image: ImageInput, *, source: str) -> PreparedImage:
    """The bytes to send for ``image``: the file it came from when that is PNG, JPEG or WebP, else a PNG
    (BMP, TIFF and GIF travel as PNG: lossless, far smaller, and one frame is all the model sees)."""
    fmt = _format_of(image.encoded) if image.encoded else "OTHER"
    if image.encoded and fmt in _KEEP_FORMATS:
        return PreparedImage(source, image.encoded, fmt, image)
    return PreparedImage(source, encode_image(image), "PNG", image)


def _format_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data[8:12] == b"WEBP":
        return "WEBP"
    return "OTHER"


def wire_parameters(request: GenerationRequest) -> dict[str, Any]:
    """Format A's ``parameters`` for the request: the sampling fields its caller set (all of them for parameters
    built in code), and its time budget."""
    params = request.params
    values = params.as_dict()
    names = params.given if params.given is not None else [n for n, v in values.items() if v not in (None, [])]
    out = {name: values[name] for name in values if name in names}
    if "stop" in out:
        out["stop"] = list(params.stop)
    if out.pop("logprobs", None) is not None:
        out["logprobs"] = True
        if params.logprobs:
            out["top_logprobs"] = params.logprobs
    if request.time_limit_s is not None:
        out["time_limit_s"] = request.time_limit_s
    return out


def build_body(
    request: GenerationRequest, *, payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT, stream: bool = False
) -> bytes:
    """The format-A body (one dialog: the request's messages) that fits ``payload_limit`` bytes.

    A message whose images all come before its text is sent without markers (the server puts images first);
    otherwise ``<ImageHere>`` marks where each image goes.
    """
    images = [part.image for message in request.messages for part in message.parts if isinstance(part, ImagePart)]
    prepared = [prepare(image, source=image.origin or f"image {i + 1}") for i, image in enumerate(images)]
    parameters = {**wire_parameters(request), **({"stream": True} if stream else {})}
    if payload_limit is not None:
        overhead = len(_body(request.messages, ["" for _ in prepared], parameters))
        prepared = fit(prepared, base64_budget=payload_limit - overhead, payload_limit=payload_limit)
    return _body(request.messages, [base64.b64encode(p.data).decode("ascii") for p in prepared], parameters)


def _body(messages: tuple[Message, ...], encoded: list[str], parameters: dict[str, Any]) -> bytes:
    dialog = []
    remaining = iter(encoded)
    for message in messages:
        mine = [next(remaining) for _ in message.images]
        entry: dict[str, Any] = {"role": message.role, "content": _content(message)}
        if len(mine) == 1:
            entry["image"] = mine[0]
        elif mine:
            entry["images"] = mine
        dialog.append(entry)
    body = {"inputs": [dialog], "parameters": parameters}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _content(message: Message) -> str:
    texts = [part.text for part in message.parts if not isinstance(part, ImagePart)]
    if any(IMAGE_MARKER in text for text in texts):
        raise InvalidRequest(f"the text sent with the page contains {IMAGE_MARKER}, which marks an image")
    kinds = [isinstance(part, ImagePart) for part in message.parts]
    if kinds == sorted(kinds, reverse=True):  # images first (or none): the server's default layout
        return "".join(texts)
    return "".join(IMAGE_MARKER if isinstance(part, ImagePart) else part.text for part in message.parts)


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
