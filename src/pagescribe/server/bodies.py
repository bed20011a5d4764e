"""Request bodies: the content type is checked from the header, the size before anything is parsed."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from pagescribe.errors import PayloadTooLarge, UnsupportedMediaType
from pagescribe.wire import jsonlines

BodyKind = Literal["json", "jsonlines"]
JSON_TYPES = frozenset({"application/json", "text/json"})


def body_kind(request: Request, *, allow_jsonlines: bool = True) -> BodyKind:
    """``json`` or ``jsonlines`` from ``Content-Type``; no header at all is taken as JSON (curl, boto3)."""
    header = request.headers.get("content-type")
    if header is None or not header.strip():
        return "json"
    media = header.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or media.endswith("+json"):
        return "json"
    if allow_jsonlines and media in jsonlines.CONTENT_TYPES:
        return "jsonlines"
    accepted = "application/json or application/jsonlines" if allow_jsonlines else "application/json"
    raise UnsupportedMediaType(f"content type {media!r} is not supported: send {accepted}", param="Content-Type")


async def read_body(request: Request, *, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes.

    ``Content-Length`` is checked before reading anything; a body without one (chunked) is counted as it
    streams in, so an oversized upload is never held in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(int(declared), limit), param="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit, at_least=True), param="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    prefix = "at least " if at_least else ""
    return f"the request body is {prefix}{size:,} bytes, over the limit of {limit:,} bytes"
