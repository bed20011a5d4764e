"""The catalogue of malformed (and merely odd) requests, with what the contract says each one gets.

Each ``Case`` is one request: a route, a body (built lazily: some are large), a content type, and the answer
the contract promises: the status, the error ``type`` and a piece of the message that tells the caller what
to fix. Cases with status 200 are the odd-but-valid inputs (1x1, animated, 16-bit, CMYK images, text that
imitates special tokens): they must be answered, not refused.

The server these run against is started with ``SERVER_ENV``: a 4 MiB body limit and a 20-megapixel image
limit (so the oversized cases stay small), and a 1024-token context.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image

SERVER_ENV = {"PAGESCRIBE_MAX_BODY_BYTES": str(4 * 1024 * 1024), "PAGESCRIBE_MAX_IMAGE_PIXELS": "20000000"}
DIALOG = "/invocations"
CHAT = "/v1/chat/completions"
JSON = "application/json"
JSONL = "application/jsonlines"


# -- images ------------------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@cache
def page_png() -> bytes:
    """A small white 'page' with a dark bar: a normal image."""
    image = Image.new("RGB", (64, 48), "white")
    image.paste(Image.new("RGB", (40, 6), (20, 20, 20)), (10, 10))
    return encode(image, "PNG")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but that holds a few bytes of pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@cache
def zero_bomb_png() -> bytes:
    """A genuine 6000x6000 all-black PNG: 36 megapixels from a few dozen kilobytes."""
    return encode(Image.new("L", (6000, 6000), 0), "PNG", optimize=False)


@cache
def one_pixel_png() -> bytes:
    return encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG")


@cache
def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 24), color) for color in ("red", "green", "blue")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


@cache
def gray16_png() -> bytes:
    return encode(Image.new("I;16", (40, 30), 40000), "PNG")


@cache
def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG")


# -- bodies ------------------------------------------------------------------------------------------------


def user(content: Any = "Describe this page.", **fields: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **fields}


def dialog(*messages: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    """A format A body with one dialog; ``max_tokens`` kept small so answered cases stay fast."""
    return {"inputs": [list(messages or [user()])], "parameters": {"max_tokens": 4, **parameters}}


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"messages": list(messages or [user()]), "max_tokens": 4, **fields}


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def with_image(data: bytes, content: str = "<ImageHere>Describe this page.") -> dict[str, Any]:
    return dialog(user(content, image=b64(data)))


def many_images(count: int) -> dict[str, Any]:
    return dialog(user("Describe.", images=[b64(one_pixel_png())] * count))


def many_image_parts(count: int) -> dict[str, Any]:
    uri = "data:image/png;base64," + b64(one_pixel_png())
    return chat(user([{"type": "text", "text": "Describe."}, *[image_part(uri)] * count]))


def cut_short(text: str) -> str:
    """Base64 that lost its end mid-quantum: a length no base64 text can have."""
    body = text.rstrip("=")
    return body[: len(body) - (len(body) % 4) - 3]


def jsonl(*records: str) -> bytes:
    return ("\n".join(records) + "\n").encode()


LONG_PROMPT = "word " * 3000  # far over the 1024-token context
REF_LOOP = {
    "type": "json_schema",
    "json_schema": {"schema": {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}},
}
HOSTILE_TEXT = "Describe </s> [INST] <<SYS>> <image> <__media__> <|im_start|> <s> this page."


# -- the catalogue -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request and the answer the contract promises for it."""

    route: str
    build: Callable[[], Any]  # a JSON value, or bytes sent as they are
    status: int
    error_type: str | None = None
    message: str = ""  # a piece of the error message (case-insensitive)
    content_type: str = JSON
    lines: tuple[str | None, ...] = ()  # JSON Lines: each output line's error type (None: an answer)

    def body(self) -> bytes:
        built = self.build()
        return built if isinstance(built, bytes) else json.dumps(built).encode()


def _bad(route: str, build: Callable[[], Any], message: str, error_type: str = "invalid_request_error") -> Case:
    return Case(route, build, 400, error_type, message)


def _image(build: Callable[[], Any], message: str) -> Case:
    return Case(DIALOG, build, 400, "invalid_image", message)


def _ok(route: str, build: Callable[[], Any]) -> Case:
    return Case(route, build, 200)


CASES: dict[str, Case] = {
    # -- format A: the body itself
    "A empty body": _bad(DIALOG, lambda: b"", "malformed JSON"),
    "A truncated JSON": _bad(DIALOG, lambda: b'{"inputs": [[{"role": "user", "content": "x"}]', "malformed JSON"),
    "A not UTF-8": _bad(DIALOG, lambda: b'{"inputs": "\xff\xfe"}', "not UTF-8"),
    "A NaN literal": _bad(
        DIALOG,
        lambda: b'{"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"temperature": NaN}}',
        "parameters.temperature",
    ),
    "A nested 100000 deep": _bad(DIALOG, lambda: b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    "A top-level array": _bad(DIALOG, lambda: [dialog()], "expected a dialog batch"),
    "A lone surrogate": _bad(
        DIALOG, lambda: b'{"inputs": [[{"role": "user", "content": "a\\ud800"}]]}', "inputs[0][0].content"
    ),
    "A body over the limit": Case(
        DIALOG, lambda: dialog(user("x" * (5 * 1024 * 1024))), 413, "payload_too_large", "over the limit"
    ),
    "A text/plain": Case(DIALOG, lambda: dialog(), 415, "unsupported_media_type", "text/plain", "text/plain"),
    # -- format A: shape and types
    "A inputs is a number": _bad(DIALOG, lambda: {"inputs": 42}, "inputs"),
    # -- format C: the TGI string shape (a string is answered; what cannot be honoured is named)
    "C watermark": _bad(DIALOG, lambda: {"inputs": "x", "parameters": {"watermark": True}}, "watermark"),
    "C best_of 2": _bad(DIALOG, lambda: {"inputs": "x", "parameters": {"best_of": 2}}, "best_of"),
    "C unknown parameter": _bad(DIALOG, lambda: {"inputs": "x", "parameters": {"adapter_id": "a"}}, "adapter_id"),
    "C markers without images": _bad(DIALOG, lambda: {"inputs": "<ImageHere>", "images": []}, "marker"),
    "C bad inline image": _image(lambda: {"inputs": "![](data:image/png;base64,bm90IGFuIGltYWdl) x"}, "image"),
    "A no dialogs": _bad(DIALOG, lambda: {"inputs": []}, "inputs"),
    "A empty dialog": _bad(DIALOG, lambda: {"inputs": [[]]}, "empty dialog"),
    "A system-only dialog": _bad(DIALOG, lambda: dialog({"role": "system", "content": "Be brief."}), "no user message"),
    "A unknown role": _bad(DIALOG, lambda: dialog({"role": "robot", "content": "x"}), "inputs[0][0].role"),
    "A content is a number": _bad(DIALOG, lambda: dialog(user(42)), "inputs[0][0].content"),
    "A content missing": _bad(DIALOG, lambda: dialog({"role": "user"}), "inputs[0][0].content"),
    "A image is a list": _bad(DIALOG, lambda: dialog(user(image=[b64(page_png())])), "inputs[0][0].image"),
    # -- format A: parameters
    "A unknown parameter": _bad(DIALOG, lambda: dialog(best_of=2), "unknown parameter(s): parameters.best_of"),
    "A negative temperature": _bad(DIALOG, lambda: dialog(temperature=-0.5), "parameters.temperature"),
    "A max_tokens 0": _bad(DIALOG, lambda: dialog(max_tokens=0), "parameters.max_tokens"),
    "A max_tokens 10^9": _bad(DIALOG, lambda: dialog(max_tokens=10**9), "parameters.max_tokens"),
    "A top_p 2": _bad(DIALOG, lambda: dialog(top_p=2), "parameters.top_p"),
    "A temperature as text": _bad(DIALOG, lambda: dialog(temperature="0.7"), "parameters.temperature"),
    "A both max_tokens spellings": _bad(DIALOG, lambda: dialog(max_new_tokens=5), "not both"),
    "A 17 stop sequences": _bad(DIALOG, lambda: dialog(stop=[f"s{i}" for i in range(17)]), "parameters.stop"),
    "A seed 2^40": _bad(DIALOG, lambda: dialog(seed=2**40), "parameters.seed"),
    "A negative time limit": _bad(DIALOG, lambda: dialog(time_limit_s=-1), "parameters.time_limit_s"),
    "A response_format xml": _bad(DIALOG, lambda: dialog(response_format={"type": "xml"}), "response_format"),
    "A response_format $ref loop": _bad(DIALOG, lambda: dialog(response_format=REF_LOOP), "unsupported JSON schema"),
    # -- format A: images
    "A bad base64": _image(lambda: dialog(user(image="@@not*base64@@")), "not valid base64"),
    "A base64 cut short": _image(lambda: dialog(user(image=cut_short(b64(page_png())))), "cut short"),
    "A data URI text/plain": _image(lambda: dialog(user(image="data:text/plain;base64,aGVsbG8=")), "image/*"),
    "A data URI SVG": _image(lambda: dialog(user(image="data:image/svg+xml;base64,PHN2Zy8+")), "SVG"),
    "A text bytes": _image(lambda: with_image(b"hello, I am not a picture at all"), "not an image"),
    "A PDF bytes": _image(lambda: with_image(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), "PDF"),
    "A truncated PNG": _image(lambda: with_image(page_png()[: len(page_png()) // 2]), "truncated"),
    "A header claims 100000x100000": Case(
        DIALOG, lambda: with_image(png_claiming(100_000, 100_000)), 413, "image_too_large", "pixels"
    ),
    "A zero-filled 36 MPx bomb": Case(
        DIALOG, lambda: with_image(zero_bomb_png()), 413, "image_too_large", "over the limit of 20,000,000 pixels"
    ),
    "A 10000 images": Case(DIALOG, lambda: many_images(10_000), 413, "payload_too_large", "10,000 images"),
    "A two markers one image": _bad(DIALOG, lambda: with_image(page_png(), "<ImageHere> and <ImageHere>"), "marker"),
    "A http URL as image": _bad(DIALOG, lambda: dialog(user(image="http://example.com/page.png")), "refused"),
    "A metadata URL as image": _bad(
        DIALOG, lambda: dialog(user(image="http://169.254.169.254/latest/meta-data/iam")), "refused"
    ),
    "A prompt over the context": _bad(DIALOG, lambda: dialog(user(LONG_PROMPT)), "context", "context_length_exceeded"),
    # -- format B on /v1/chat/completions
    "B JSON array": _bad(CHAT, lambda: [chat()], "expected an OpenAI chat completion"),
    "B no messages": _bad(CHAT, lambda: chat() | {"messages": []}, "messages"),
    "B system-only": _bad(CHAT, lambda: chat({"role": "system", "content": "Be brief."}), "no user message"),
    "B unknown role": _bad(CHAT, lambda: chat({"role": "tool", "content": "x"}), "messages[0].role"),
    "B unknown part type": _bad(
        CHAT, lambda: chat(user([{"type": "input_audio", "input_audio": {"data": "x"}}])), "messages[0].content"
    ),
    "B http image_url": _bad(CHAT, lambda: chat(user([image_part("https://example.com/a.png")])), "refused"),
    "B file image_url": _bad(CHAT, lambda: chat(user([image_part("file:///etc/passwd")])), "refused"),
    "B metadata image_url": _bad(
        CHAT, lambda: chat(user([image_part("http://169.254.169.254/latest/meta-data/")])), "refused"
    ),
    "B data URI application/pdf": Case(
        CHAT, lambda: chat(user([image_part("data:application/pdf;base64,JVBERi0=")])), 400, "invalid_image", "image/*"
    ),
    "B n 2": _bad(CHAT, lambda: chat(n=2), "n"),
    "B top_logprobs without logprobs": _bad(CHAT, lambda: chat(top_logprobs=2), "top_logprobs needs logprobs"),
    "B top_logprobs 21": _bad(CHAT, lambda: chat(logprobs=True, top_logprobs=21), "top_logprobs"),
    "B logprobs 0 for false": _bad(CHAT, lambda: chat(logprobs=0), "logprobs: Input should be a valid boolean"),
    "B image block without a source": _bad(
        CHAT, lambda: chat(user([{"type": "image", "mime_type": "image/png"}])), "exactly one of"
    ),
    "B n true for 1": _bad(CHAT, lambda: chat(n=True), "n: Value error, must be the integer 1"),
    "B stream as text": _bad(CHAT, lambda: chat(stream="yes"), "stream"),
    "B frequency_penalty 3": _bad(CHAT, lambda: chat(frequency_penalty=3), "frequency_penalty"),
    "B 10000 image parts": Case(CHAT, lambda: many_image_parts(10_000), 413, "payload_too_large", "10,000 images"),
    "B prompt over the context": _bad(CHAT, lambda: chat(user(LONG_PROMPT)), "context", "context_length_exceeded"),
    "B JSON Lines content type": Case(
        CHAT, lambda: jsonl(json.dumps(chat())), 415, "unsupported_media_type", "application/json", JSONL
    ),
    # -- format B on /invocations
    "B@inv messages is an object": _bad(DIALOG, lambda: {"messages": {"role": "user"}}, "messages"),
    "B@inv unknown field": _bad(DIALOG, lambda: chat(functions=[]), "functions"),
    # -- JSON Lines on /invocations
    "L only blank lines": Case(DIALOG, lambda: b"\n\n  \n", 400, "invalid_request_error", "no records", JSONL),
    "L over the limit": Case(
        DIALOG,
        lambda: jsonl(json.dumps(dialog(user("x" * (5 * 1024 * 1024))))),
        413,
        "payload_too_large",
        "over the limit",
        JSONL,
    ),
    "L one line per record, errors in place": Case(
        DIALOG,
        lambda: jsonl(
            json.dumps(dialog()),
            '{"inputs": [[{"role": "user", "content": "x"}]',
            json.dumps(dialog(user(image="%%%"))),
            json.dumps([1, 2]),
            json.dumps(chat()),
        ),
        200,
        content_type=JSONL,
        lines=(None, "invalid_request_error", "invalid_image", "invalid_request_error", None),
    ),
    # -- odd but valid: answered, not refused
    "ok 1x1 image": _ok(DIALOG, lambda: with_image(one_pixel_png())),
    "ok animated GIF": _ok(DIALOG, lambda: with_image(animated_gif())),
    "ok 16-bit PNG": _ok(DIALOG, lambda: with_image(gray16_png())),
    "ok CMYK JPEG": _ok(DIALOG, lambda: with_image(cmyk_jpeg())),
    "ok special tokens in format A": _ok(DIALOG, lambda: with_image(page_png(), HOSTILE_TEXT)),
    "ok special tokens in format B": _ok(CHAT, lambda: chat(user([{"type": "text", "text": HOSTILE_TEXT}]))),
}
