"""Continuous batching, prefix cache and image cache of the llama.cpp engine, on the tiny model."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from PIL import Image, ImageDraw

from pagescribe.engine.base import CancelToken, Event, Work, final
from pagescribe.engine.factory import build_engine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.engine.sinks import collect, stream
from pagescribe.errors import EngineError
from pagescribe.images import image_from_pil
from pagescribe.models.files import ModelFiles
from pagescribe.types import (
    GenerationRequest,
    GenerationResult,
    ImageInput,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
)

INSTRUCTIONS = "You will be provided with an image of a page. Describe the content in technical terms. " * 4


def page(n: int) -> ImageInput:
    img = Image.new("RGB", (320, 240), ("white", "navy", "orange", "teal", "pink", "gray")[n % 6])
    ImageDraw.Draw(img).text((20, 20), f"page {n}", fill="black")
    return image_from_pil(img)


def doc_request(image: ImageInput, *, max_tokens: int = 12, **params: object) -> GenerationRequest:
    """The pipeline's layout: shared instructions first, then the page."""
    message = Message("user", (TextPart(INSTRUCTIONS), ImagePart(image)))
    return GenerationRequest(messages=(message,), params=SamplingParams(max_tokens=max_tokens, **params))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine4(tiny_model: ModelFiles) -> Iterator[LlamaCppEngine]:
    engine = build_engine(EngineOptions(ctx=1024, threads=2, slots=4), files=tiny_model)
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def engine1(tiny_model: ModelFiles) -> Iterator[LlamaCppEngine]:
    engine = build_engine(EngineOptions(ctx=1024, threads=2, slots=1, image_cache_mb=0), files=tiny_model)
    engine.load()
    yield engine
    engine.close()


def run_concurrently(engine: LlamaCppEngine, requests: list[GenerationRequest]) -> list[GenerationResult]:
    results: list[GenerationResult | None] = [None] * len(requests)

    def work(i: int) -> None:
        results[i] = collect(engine, requests[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_batched_requests_give_the_same_text_as_one_at_a_time(
    engine1: LlamaCppEngine, engine4: LlamaCppEngine
) -> None:
    requests = [doc_request(page(n), max_tokens=10 + n) for n in range(6)]
    alone = [collect(engine1, r) for r in requests]
    together = run_concurrently(engine4, requests)
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.usage.completion_tokens for r in together] == [10 + n for n in range(6)]
    assert len({r.text for r in together}) == 6  # six pages, six different answers


def test_the_shared_instructions_are_evaluated_once(engine4: LlamaCppEngine) -> None:
    first = collect(engine4, doc_request(page(10)))
    second = collect(engine4, doc_request(page(11)))
    assert first.usage.prompt_tokens == second.usage.prompt_tokens
    # everything before the image is reused: the instructions are most of the text
    assert second.usage.cached_tokens >= 60
    assert second.usage.cached_tokens < second.usage.prompt_tokens - 16  # the image itself is new


def test_slots_that_never_saw_the_instructions_copy_them_from_another_slot(
    tiny_model: ModelFiles, engine1: LlamaCppEngine
) -> None:
    engine = build_engine(EngineOptions(ctx=1024, threads=2, slots=3), files=tiny_model)
    engine.load()
    try:
        collect(engine, doc_request(page(40)))  # one slot now holds the instructions; two are empty
        requests = [doc_request(page(n)) for n in (41, 42, 43)]
        together = run_concurrently(engine, requests)
    finally:
        engine.close()
    # every slot starts from the instructions, the empty ones through a copy of another slot's KV stream,
    # and the copied state gives the same answers as evaluating everything afresh
    assert all(r.usage.cached_tokens >= 60 for r in together)
    assert [r.text for r in together] == [collect(engine1, r).text for r in requests]


def test_a_repeated_page_reuses_the_whole_prompt_and_answers_the_same(engine4: LlamaCppEngine) -> None:
    request = doc_request(page(20), max_tokens=8)
    first = collect(engine4, request)
    again = collect(engine4, request)
    assert again.text == first.text
    assert again.usage.cached_tokens == again.usage.prompt_tokens - 1  # only the last token is evaluated again


def test_the_same_page_sent_twice_at_once_is_evaluated_once(engine4: LlamaCppEngine, engine1: LlamaCppEngine) -> None:
    request = doc_request(page(70), max_tokens=8)
    first, second = stream(engine4, request), stream(engine4, request)  # both queued before either is evaluated
    results = [final(first), final(second)]
    # the second waits while the first evaluates the page, then copies all of it rather than encoding it again
    assert results[1].usage.cached_tokens == results[1].usage.prompt_tokens - 1
    assert results[1].timings.image_encode_ms == 0
    assert results[0].text == results[1].text == collect(engine1, request).text


def test_questions_about_one_page_sent_together_evaluate_the_page_once(engine4: LlamaCppEngine) -> None:
    image = page(72)  # image first, then the question: what a dialog batch of questions about one page sends
    requests = [
        GenerationRequest(
            messages=(Message("user", (ImagePart(image), TextPart(q))),), params=SamplingParams(max_tokens=4)
        )
        for q in ("What is the title?", "Is there a table?", "Which colour is the page?")
    ]
    streams = [stream(engine4, r) for r in requests]
    results = [final(s) for s in streams]
    first = results[0]
    assert first.timings.image_encode_ms > 0
    # the others copy the page's cells (16 positions on the tiny model) from the first and evaluate only their question
    assert all(r.usage.cached_tokens >= first.usage.cached_tokens + 16 for r in results[1:])
    assert all(r.timings.image_encode_ms == 0 for r in results[1:])


def test_a_request_waiting_on_a_cancelled_one_still_gets_its_answer(
    engine4: LlamaCppEngine, engine1: LlamaCppEngine
) -> None:
    request = doc_request(page(71), max_tokens=6)
    cancel = CancelToken()
    first = stream(engine4, request, cancel=cancel)
    second = stream(engine4, request)
    cancel.cancel()  # before, during or after its prompt: the one waiting on it must not wait forever
    assert final(first).finish_reason == "cancelled"
    result = final(second)
    assert result.finish_reason == "length" and result.text == collect(engine1, request).text


@pytest.mark.parametrize("prefix_cache_mb", [0, 64])
def test_the_instructions_outlive_a_burst_of_other_requests_that_takes_every_slot(
    tiny_model: ModelFiles, engine1: LlamaCppEngine, prefix_cache_mb: int
) -> None:
    options = EngineOptions(ctx=1024, threads=2, slots=2, prefix_cache_mb=prefix_cache_mb)
    engine = build_engine(options, files=tiny_model)
    engine.load()
    try:
        collect(engine, doc_request(page(80)))
        collect(engine, doc_request(page(81)))  # reuses the instructions: they are worth keeping now
        burst = [
            GenerationRequest(messages=(Message("user", (TextPart(f"{n} tell a story. " * 20),)),),
                              params=SamplingParams(max_tokens=4))
            for n in range(2)
        ]
        streams = [stream(engine, r) for r in burst]  # both slots now evaluate something else
        assert all(final(s).finish_reason == "length" for s in streams)
        after = collect(engine, doc_request(page(82)))
    finally:
        engine.close()
    assert after.text == collect(engine1, doc_request(page(82))).text
    if prefix_cache_mb:  # the instructions come back from host memory instead of being evaluated again
        assert after.usage.cached_tokens >= 60
    else:
        assert after.usage.cached_tokens < 10


def test_a_saved_prefix_that_cannot_be_restored_fails_one_request_only(
    tiny_model: ModelFiles, engine1: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = build_engine(EngineOptions(ctx=1024, threads=2, slots=1), files=tiny_model)
    engine.load()
    try:
        collect(engine, doc_request(page(85)))
        collect(engine, doc_request(page(86)))  # the instructions are reused...
        collect(engine, GenerationRequest(messages=(Message("user", (TextPart("other " * 30),)),)))  # ...and saved
        native = engine._scheduler.native  # type: ignore[union-attr]

        def broken(seq: int, state: object) -> None:
            raise EngineError("llama.cpp could not restore a saved sequence state")

        monkeypatch.setattr(native, "restore", broken)
        with pytest.raises(EngineError, match="restore"):
            collect(engine, doc_request(page(87)))
        after = collect(engine, doc_request(page(87)))  # evaluated afresh: the broken state was dropped
    finally:
        engine.close()
    assert after.text == collect(engine1, doc_request(page(87))).text
    assert after.usage.cached_tokens < 10


def test_the_same_image_with_another_question_skips_the_image_encoder(engine4: LlamaCppEngine) -> None:
    image = page(30)
    hits_before, _ = engine4.image_cache
    # the question comes first, so the prompts differ before the image and the prefix cache cannot cover it
    first = GenerationRequest(
        messages=(Message("user", (TextPart("What is the title?"), ImagePart(image))),),
        params=SamplingParams(max_tokens=4),
    )
    other = GenerationRequest(
        messages=(Message("user", (TextPart("Any numbers?"), ImagePart(image))),), params=SamplingParams(max_tokens=4)
    )
    assert collect(engine4, first).timings.image_encode_ms > 0
    result = collect(engine4, other)
    assert engine4.image_cache[0] == hits_before + 1
    assert result.timings.image_encode_ms == 0


def test_a_cancelled_request_frees_its_slot_for_the_others(tiny_model: ModelFiles) -> None:
    engine = build_engine(EngineOptions(ctx=65536, threads=2, slots=2), files=tiny_model)
    engine.load()
    try:
        cancel = CancelToken()
        endless = doc_request(page(40), max_tokens=60000)
        holder: list[GenerationResult] = []
        worker = threading.Thread(target=lambda: holder.append(collect(engine, endless, cancel=cancel)))
        worker.start()
        quick = [collect(engine, doc_request(page(41 + n), max_tokens=4)) for n in range(3)]
        assert all(r.finish_reason == "length" for r in quick)  # served beside the long one
        cancel.cancel()
        worker.join(timeout=10)
        assert holder and holder[0].finish_reason == "cancelled"
    finally:
        engine.close()


def test_a_stream_abandoned_by_its_reader_stops_generating(engine4: LlamaCppEngine) -> None:
    events = stream(engine4, doc_request(page(50), max_tokens=500))
    next(events)
    events.close()  # the reader goes away (a disconnected client)
    assert collect(engine4, doc_request(page(51), max_tokens=3)).usage.completion_tokens == 3


def test_the_server_builds_the_engine_with_the_slots_and_context_it_is_given(tiny_model: ModelFiles) -> None:
    from pagescribe.server.settings import ServerSettings

    engine = build_engine(ServerSettings(model=str(tiny_model.text), mmproj=str(tiny_model.mmproj), slots=3, ctx=1024))
    engine.load()
    try:
        assert engine.slots == 3
        requests = [doc_request(page(60 + n), max_tokens=3) for n in range(3)]
        assert all(r.usage.completion_tokens == 3 for r in run_concurrently(engine, requests))  # type: ignore[arg-type]
    finally:
        engine.close()


@pytest.mark.parametrize("warm", [False, True], ids=["cold-start", "warm-slots"])
def test_pages_sent_together_start_answering_together(
    tiny_model: ModelFiles, engine1: LlamaCppEngine, warm: bool
) -> None:
    # Every image a step reaches is evaluated before the next step, and slots that copy the shared instructions
    # from another start in the same step: no page streams on alone while the others wait for their images
    # (which would make every later step decode fewer pages at once).
    engine = build_engine(EngineOptions(ctx=1024, threads=2, slots=4), files=tiny_model)
    engine.load()
    try:
        if warm:  # every slot holds the instructions from an earlier page, as in a server that has been running
            run_concurrently(engine, [doc_request(page(90 + i), max_tokens=2) for i in range(4)])
        order: list[int] = []
        results: dict[int, Event] = {}
        done = [threading.Event() for _ in range(4)]

        def sink_for(i: int) -> Callable[[Event], None]:
            def sink(event: Event) -> None:
                if isinstance(event, str):
                    order.append(i)
                else:
                    results[i] = event
                    done[i].set()
            return sink

        requests = [doc_request(page(80 + i), max_tokens=8) for i in range(4)]
        engine.submit([Work(r, sink_for(i)) for i, r in enumerate(requests)])
        assert all(d.wait(60) for d in done)
        first = max(order.index(i) for i in range(4))
        third = min((k for k, i in enumerate(order) if order[: k + 1].count(i) == 3), default=len(order))
        assert first < third, order
        # and each answer is the one the page gets on its own
        assert [results[i].text for i in range(4)] == [collect(engine1, r).text for r in requests]  # type: ignore[union-attr]
    finally:
        engine.close()
