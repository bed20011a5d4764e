"""AsyncClient: the same answers and errors for asyncio code, and batches with a bounded concurrency."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from test_client_support import answer, page_png

from pagescribe.client import AsyncClient, retry
from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import ImageError, InvalidRequest, Overloaded
from pagescribe.wire.errors import error_body, error_headers

URL = "http://model.test"


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(retry, "_asleep", asleep)
    return waits


def mock_client(handler: httpx.MockTransport) -> AsyncClient:
    return AsyncClient.for_url(URL, http_client=httpx.AsyncClient(transport=handler))


async def test_describe_retries_a_full_queue_then_returns_the_answer(slept: list[float]) -> None:
    seen: list[httpx.Request] = []
    busy = Overloaded("queue full", retry_after_s=2)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503, json=error_body(busy), headers=error_headers(busy))
        return httpx.Response(200, json=answer("async text"))

    async with mock_client(httpx.MockTransport(handler)) as client:
        result = await client.describe(page_png(), max_tokens=5)
    assert result.text == "async text" and len(seen) == 2 and 2.0 <= slept[0] <= 2.2
    assert json.loads(seen[0].content)["parameters"] == {"max_tokens": 5}


async def test_stream_over_http_yields_pieces_then_the_result() -> None:
    final = {**answer("ab")[0], "index": 0}
    body = b"".join(json.dumps(r).encode() + b"\n" for r in ({"token": {"text": "a"}}, {"token": {"text": "b"}}, final))
    async with mock_client(httpx.MockTransport(lambda r: httpx.Response(200, content=body))) as client:
        stream = await client.stream(page_png())
        assert [piece async for piece in stream] == ["a", "b"]
    assert stream.result.text == "ab"


async def test_a_refusal_is_raised_typed_and_not_retried() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"error": {"type": "invalid_request_error", "message": "no"}})

    async with mock_client(httpx.MockTransport(handler)) as client:
        with pytest.raises(InvalidRequest, match=r"^no$"):
            await client.describe(page_png())
    assert len(seen) == 1


async def test_describe_many_keeps_order_limits_concurrency_and_returns_errors_as_values() -> None:
    # Answers with the width of the image it got; counts how many requests run at once.
    engine = FakeEngine(n_slots=2, token_delay_s=0.02, answer=lambda request: f"width {request.images[0].width}")

    pages: list[bytes] = [page_png(width=100 + n) for n in range(6)]
    pages[3] = b"garbage"
    async with AsyncClient.in_process(engine=engine) as client:
        results = await client.describe_many(pages, prompt="Read.", concurrency=4)
    error = results[3]
    assert isinstance(error, ImageError) and error.message.startswith("image 1: ")
    assert [r.text for r in results if not isinstance(r, ImageError)] == [f"width {100 + n}" for n in (0, 1, 2, 4, 5)]
    assert engine.peak_running == 2  # the engine's two slots, however many the batch allows


async def test_in_process_stream_and_describe_share_the_engine() -> None:
    async with AsyncClient.in_process(engine=FakeEngine(reply="x y z")) as client:
        stream = await client.stream(page_png())
        pieces = [piece async for piece in stream]
        again = await client.describe(page_png(), max_tokens=1)
    assert pieces == ["x", " y", " z"] and stream.result.text == "x y z" and again.text == "x"


async def test_an_early_stop_of_an_in_process_stream_frees_its_slot() -> None:
    engine = FakeEngine(reply="a b c d e f g", token_delay_s=0.01, n_slots=1)
    async with AsyncClient.in_process(engine=engine) as client:
        async with await client.stream(page_png()) as stream:
            assert await anext(stream) == "a"
        assert (await asyncio.wait_for(client.describe(page_png()), 5)).text == "a b c d e f g"
