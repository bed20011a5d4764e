"""Every row of the contract's error table, on /invocations and /v1, and the server still serving after."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image
from test_server_app import REPLY, dialog, png_b64, serve

from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import ContextOverflow


def user(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"inputs": [[{"role": "user", "content": content, **extra}]]}


def huge_png_header(width: int, height: int) -> bytes:
    """A few hundred bytes claiming a gigantic image: a decompression bomb's shape."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def noise_png_b64() -> str:
    """A PNG that does not compress: 30 kB of random pixels."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (100, 100), os.urandom(30_000)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


BAD_400 = {
    "malformed JSON": (b'{"inputs": [[{"role": "user", "content": "x"}]', "malformed JSON"),
    "not UTF-8": (b'{"inputs": "\xff\xfe"}', "UTF-8"),
    "lone surrogate": (b'{"inputs": [[{"role": "user", "content": "a\\ud800b"}]]}', "inputs[0][0].content"),
    "wrong type": (user(content=5), "inputs[0][0].content"),
    "bad base64": (user(image="@@@not-base64@@@"), "not valid base64"),
    "not an image": (user(image=base64.b64encode(b"hello, I am text").decode()), "not an image"),
    "pdf sent as image": (user(image=base64.b64encode(b"%PDF-1.7 ...").decode()), "PDF"),
    "unknown parameter": ({**user(), "parameters": {"max_tokens": 5, "best_of": 2}}, "best_of"),
    "out of range": ({**user(), "parameters": {"temperature": 99}}, "temperature"),
    "neither format": ({"prompt": "hi"}, "expected a dialog batch"),
    "empty body": (b"", "malformed JSON"),
}


@pytest.mark.parametrize("name", list(BAD_400))
async def test_400_rows_name_the_problem(name: str) -> None:
    body, expected = BAD_400[name]
    async with serve() as client:
        if isinstance(body, bytes):
            response = await client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
        else:
            response = await client.post("/invocations", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert expected in error["message"] and set(error) == {"type", "message", "param"}


async def test_openai_route_uses_the_openai_envelope() -> None:
    async with serve() as client:
        response = await client.post("/v1/chat/completions", json={"messages": [], "model": "x"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["type"] == "invalid_request_error" and error["param"] == "messages"


async def test_context_overflow_from_the_engine_is_a_400() -> None:
    overflowing = FakeEngine(error=ContextOverflow("the prompt needs 5000 tokens but the context window holds 4096"))
    async with serve(overflowing) as client:
        plain = await client.post("/invocations", json=dialog())
        streamed = await client.post("/invocations", json=dialog(stream=True))
    for response in (plain, streamed):
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "context_length_exceeded"


async def test_413_for_a_declared_body_over_the_limit() -> None:
    async with serve(max_body_bytes=2048) as client:
        response = await client.post("/invocations", json={"inputs": [[{"role": "user", "content": "x" * 5000}]]})
    assert response.status_code == 413 and response.json()["error"]["type"] == "payload_too_large"


async def test_413_for_a_chunked_body_over_the_limit_without_reading_it_all() -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b" " * 1024

    async with serve(max_body_bytes=4096) as client:
        response = await client.post("/invocations", content=body(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert sent < 100


@pytest.mark.parametrize(
    ("settings", "image"),
    [
        ({"max_image_bytes": 1000}, noise_png_b64()),
        ({"max_image_pixels": 10_000}, png_b64(size=(200, 200))),
        ({}, base64.b64encode(huge_png_header(100_000, 100_000)).decode()),
    ],
    ids=["bytes", "pixels", "decompression bomb"],
)
async def test_413_for_images_over_the_limits(settings: dict[str, Any], image: str) -> None:
    async with serve(**settings) as client:
        response = await client.post("/invocations", json=user("x", image=image))
    assert response.status_code == 413 and response.json()["error"]["type"] == "image_too_large"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/invocations", "text/plain"),
        ("/invocations", "application/x-www-form-urlencoded"),
        ("/v1/chat/completions", "application/jsonlines"),
    ],
)
async def test_415_for_other_content_types(path: str, content_type: str) -> None:
    async with serve() as client:
        response = await client.post(path, content=b"{}", headers={"Content-Type": content_type})
    assert response.status_code == 415 and response.json()["error"]["type"] == "unsupported_media_type"


async def test_503_with_retry_after_when_the_queue_is_full() -> None:
    engine = FakeEngine(reply="slow " * 20, token_delay_s=0.02, queue_size=0, retry_after_s=4)
    async with serve(engine) as client:
        running = asyncio.create_task(client.post("/invocations", json=user("first")))
        while not engine.requests:
            await asyncio.sleep(0.005)
        refused = await client.post("/invocations", json=user("second"))
        assert (await running).status_code == 200
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "4"
    assert refused.json()["error"]["type"] == "overloaded"


async def test_503_with_retry_after_while_loading() -> None:
    async with serve(FakeEngine(load_delay_s=0.5), wait_ready=False) as client:
        response = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"] == {
        "type": "model_not_ready",
        "message": "the model is loading",
        "param": None,
        "code": 503,
    }


async def test_500_says_only_internal_error_and_logs_the_details(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        async with serve(FakeEngine(error=ZeroDivisionError("secret internals"))) as client:
            response = await client.post("/invocations", json=dialog())
    assert response.status_code == 500
    assert response.json()["error"] == {"type": "server_error", "message": "internal error", "param": None}
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ZeroDivisionError]
    assert logged and "secret internals" in str(logged[0].exc_info[1])


async def test_an_engine_failure_mid_stream_ends_the_stream_with_an_error_line() -> None:
    breaking = FakeEngine(reply="partial text", error=ZeroDivisionError("boom"), error_after=1)
    async with serve(breaking) as client:
        lines = (await client.post("/invocations", json=dialog(stream=True))).text.splitlines()
        events = (
            await client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "stream": True}
            )
        ).text
    assert '"partial"' in lines[0]
    assert '"internal error"' in lines[-1] and '"error"' in lines[-1]
    assert '"error"' in events and "internal error" in events


async def test_404_and_405_use_the_json_envelope() -> None:
    async with serve() as client:
        missing = await client.get("/nowhere")
        wrong = await client.get("/invocations")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "method_not_allowed"


async def test_after_every_kind_of_bad_request_a_good_one_still_succeeds() -> None:
    async with serve(max_body_bytes=64 * 1024, max_image_pixels=50_000) as client:
        for body, _ in BAD_400.values():
            if isinstance(body, bytes):
                await client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
            else:
                await client.post("/invocations", json=body)
        await client.post("/invocations", content=b"x" * 100_000, headers={"Content-Type": "application/json"})
        await client.post("/invocations", json=user("x", image=png_b64(size=(400, 400))))
        await client.post("/invocations", content=b"{}", headers={"Content-Type": "text/csv"})
        good = await client.post("/invocations", json=dialog())
        ping = await client.get("/ping")
    assert good.status_code == 200 and good.json()[0]["generated_text"] == REPLY
    assert ping.status_code == 200


def test_png_helper_is_a_real_png() -> None:
    # The bomb header must be a PNG Pillow recognises, or the bomb test would pass for the wrong reason.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(huge_png_header(100_000, 100_000)))
