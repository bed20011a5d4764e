"""Helpers shared by the client tests (no tests here): a scripted HTTP server on loopback, and test images.

The server answers each POST with the next response of its script (the last one repeats) and records every
request, so a test can say "503 twice, then 200" and check what the client sent and how often.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Reply = Response | Callable[[], Response]


@dataclass
class Seen:
    """One request the scripted server received."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedServer:
    """A uvicorn server on a free loopback port, running on a thread."""

    script: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def play(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` (the last one for any after them); forget old requests."""
        self.script = list(replies)
        self.seen.clear()

    async def _answer(self, request: Request) -> Response:
        self.seen.append(Seen(request.url.path, dict(request.headers), await request.body()))
        reply = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return reply() if callable(reply) and not isinstance(reply, Response) else reply

    def start(self) -> ScriptedServer:
        self._thread.start()
        end = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < end, "the scripted server did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def scripted_server() -> Iterator[ScriptedServer]:
    """Body of a module-scoped fixture: one started server for the module."""
    server = ScriptedServer().start()
    try:
        yield server
    finally:
        server.stop()


def answer(text: str = "A page about invoices.", **extra: Any) -> list[dict[str, Any]]:
    """A format-A answer list, as the server sends it."""
    return [
        {
            "generation": {"role": "assistant", "content": text},
            "generated_text": text,
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 600, "completion_tokens": 5, "total_tokens": 605},
            "model": "pagescribe-test",
            "timings": {"image_encode_ms": 1.5, "prompt_ms": 2.5, "generate_ms": 3.5},
            **extra,
        }
    ]


def ok(text: str = "A page about invoices.") -> JSONResponse:
    return JSONResponse(answer(text))


def error(status: int, type_: str, message: str, *, param: str | None = None, **headers: str) -> Callable[[], Response]:
    """A pagescribe error answer (a factory: each request gets a fresh response)."""
    body = {"error": {"type": type_, "message": message, "param": param}}
    return lambda: JSONResponse(body, status_code=status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def container_error_body(status: int, type_: str, message: str) -> Callable[[], Response]:
    """What the SageMaker runtime answers when the container answered ``status``: a 424 ModelError."""
    original = json.dumps({"error": {"type": type_, "message": message, "param": None}})
    body = {
        "Message": f'Received error ({status}) from primary with message "{original}".',
        "OriginalStatusCode": status,
        "OriginalMessage": original,
        "LogStreamArn": "",
    }
    return lambda: JSONResponse(body, status_code=424, headers={"x-amzn-ErrorType": "ModelError"})


def page_png(width: int = 320, height: int = 240, text: str = "Invoice 42") -> bytes:
    """A small page image with some text on it."""
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).text((20, 20), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def noisy_page_png(width: int, height: int, *, seed: int = 0) -> bytes:
    """A scan-like page whose PNG barely compresses: about ``width * height * 3`` bytes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    ImageDraw.Draw(image).rectangle((width // 10, height // 10, width // 2, height // 5), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
