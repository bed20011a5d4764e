"""An answer a time limit cuts is continued with follow-up requests and comes back whole, over every transport."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_client_support import page_png

from pagescribe.client import AsyncClient, Client, RetryPolicy
from pagescribe.client.continuation import Continuation
from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline import Conversion, ConvertOptions
from pagescribe.server.app import create_app
from pagescribe.server.settings import ServerSettings
from pagescribe.types import GenerationRequest, GenerationResult, Message, SamplingParams, Timings, Usage
from pdfgen import text_page, write_pdf

REPLY = "one two three four five six seven eight nine ten eleven twelve"
URL = "http://testserver"


def slow_engine(**options: object) -> FakeEngine:
    return FakeEngine(reply=REPLY, token_delay_s=0.02, **options)  # type: ignore[arg-type]


@pytest.fixture
def served() -> Iterator[tuple[Client, FakeEngine]]:
    engine = slow_engine(n_slots=2)
    with TestClient(create_app(ServerSettings(log_level="error"), engine), base_url=URL) as http:
        yield Client.for_url(URL, http_client=http, retry=RetryPolicy(attempts=1)), engine


def test_a_cut_answer_is_continued_in_process_and_comes_back_whole() -> None:
    engine = slow_engine()
    result = Client.in_process(engine=engine).describe(page_png(), prompt="Read.", time_limit_s=0.07)
    assert (result.text, result.finish_reason) == (REPLY, "stop")
    assert result.continuations >= 2 and len(engine.requests) == result.continuations + 1
    assert result.usage.completion_tokens == len(REPLY.split())
    follow_up = engine.requests[1]
    assert [m.role for m in follow_up.messages] == ["user", "assistant"]
    assert REPLY.startswith(follow_up.messages[-1].text) and follow_up.messages[-1].text
    assert follow_up.images == engine.requests[0].images  # the same page, asked again


def test_over_http_the_follow_up_carries_the_text_so_far_as_the_assistant_turn(
    served: tuple[Client, FakeEngine],
) -> None:
    client, engine = served
    result = client.describe(page_png(), prompt="Read.", time_limit_s=0.07, max_tokens=100)
    assert (result.text, result.finish_reason, result.model) == (REPLY, "stop", engine.model_id)
    assert result.continuations >= 2
    stitched = ""
    for request, earlier in zip(engine.requests[1:], engine.requests, strict=False):
        assert request.messages[-1].role == "assistant"
        assert request.messages[-1].text.startswith(stitched)
        stitched = request.messages[-1].text
        assert request.params.max_tokens < earlier.params.max_tokens  # only what is left of max_tokens


def test_a_stream_goes_on_across_the_cuts(served: tuple[Client, FakeEngine]) -> None:
    client, _ = served
    with client.stream(page_png(), prompt="Read.", time_limit_s=0.07) as stream:
        pieces = list(stream)
    assert "".join(pieces) == REPLY == stream.result.text and stream.result.finish_reason == "stop"
    assert stream.result.continuations >= 2


async def test_the_async_client_continues_too() -> None:
    engine = slow_engine()
    async with AsyncClient.in_process(engine=engine) as client:
        whole = await client.describe(page_png(), prompt="Read.", time_limit_s=0.07)
        stream = await client.stream(page_png(), prompt="Read.", time_limit_s=0.07)
        pieces = [piece async for piece in stream]
    assert whole.text == REPLY and whole.continuations >= 2
    assert "".join(pieces) == REPLY == stream.result.text


def test_continuing_stops_at_max_tokens() -> None:
    engine = slow_engine()
    result = Client.in_process(engine=engine).describe(page_png(), max_tokens=5, time_limit_s=0.05)
    assert (result.text, result.finish_reason) == ("one two three four five", "length")
    assert result.usage.completion_tokens == 5


def test_without_continuations_the_cut_answer_is_returned_as_it_is() -> None:
    client = Client.in_process(engine=slow_engine())
    client.max_continuations = 0
    result = client.describe(page_png(), time_limit_s=0.07)
    assert result.finish_reason == "time_limit" and REPLY.startswith(result.text) and result.text != REPLY


def test_a_stop_string_split_by_a_cut_still_ends_the_answer() -> None:
    request = GenerationRequest((Message.user("x"),), SamplingParams(max_tokens=50, stop=("END",)))

    def piece(text: str, finish: str) -> GenerationResult:
        return GenerationResult(text, finish, Usage(10, len(text.split())), Timings(), "m")  # type: ignore[arg-type]

    answer = Continuation(request)
    answer.add(piece("The total is 5 EN", "time_limit"))
    assert answer.next_request() is not None
    answer.add(piece("D and more text", "time_limit"))
    assert answer.next_request() is None  # complete: the stop string was reached across the cut
    assert (answer.result().text, answer.result().finish_reason) == ("The total is 5 ", "stop")


def test_a_page_still_cut_after_its_continuations_is_failed_and_not_cached(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("Prices", ["Widget 10 EUR"])])
    engine = slow_engine()
    client = Client.in_process(engine=engine)
    client.max_continuations = 1
    options = ConvertOptions(time_limit_s=0.05, route="vlm")
    [cut] = list(Conversion([pdf], out_dir=tmp_path / "out", backend=client, options=options))
    assert (cut.status, cut.reason, cut.finish_reason, cut.continuations) == ("failed", "time_limit", "time_limit", 1)
    assert "cut (time_limit)" in (cut.error or "") and cut.attempts == 1
    client.max_continuations = 16
    [done] = list(Conversion([pdf], out_dir=tmp_path / "out", backend=client, options=options))
    assert (done.status, done.finish_reason, done.text, done.cached) == ("ok", "stop", REPLY, False)
    assert done.continuations >= 2
