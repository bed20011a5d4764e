"""One page to text: the request layout, the check, one retry with changed sampling, the failure record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pagescribe.client import Client
from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline.assemble import DocumentInfo, page_record
from pagescribe.pipeline.records import PageRecord, Transcription
from pagescribe.pipeline.render import RenderedPage
from pagescribe.pipeline.transcribe import (
    ANCHOR_HEADER,
    DEFAULT_PARAMS,
    TranscribeOptions,
    build_request,
    summarize,
    transcribe,
)
from pagescribe.prompts import load_prompt
from pagescribe.types import ImageInput, ImagePart, TextPart

PROMPT = load_prompt()
GOOD = "The prices are the following: 3.50 EUR for a widget and 7.25 EUR for a gadget."
LOOP = "Revenue grew. " + "table table table " * 30


def page(number: int, *, shade: int = 0, text_layer: str | None = "Price list\nWidget 3.50 EUR") -> RenderedPage:
    image = ImageInput(8, 8, bytes([shade, 255 - shade, number % 256]) * 64)
    return RenderedPage(Path("docs/prices.pdf"), number, 3, image, text_layer)


def run(
    replies: list[str], *, text_layer: str | None = "Price list\nWidget 3.50 EUR", **opts: Any
) -> tuple[FakeEngine, Transcription, PageRecord]:
    engine = FakeEngine(replies=list(replies))
    options = TranscribeOptions(prompt=PROMPT, **opts)
    attempts = transcribe(Client.in_process(engine=engine), page(1, text_layer=text_layer), options)
    result = summarize(attempts, options=options, model_id=engine.model_id)
    record = page_record(
        DocumentInfo("docs/prices.pdf", "00" * 32, "prices"), page(1, text_layer=text_layer), result,
        prompt_id=PROMPT.id, render={"dpi": None, "max_side": 1344},
    )  # fmt: skip
    return engine, result, record


def test_the_prompt_is_the_same_leading_text_for_every_page_then_the_image() -> None:
    requests = [build_request(PROMPT, page(n, shade=40 * n), params=DEFAULT_PARAMS) for n in (1, 2)]
    for request in requests:
        [message] = request.messages
        assert message.role == "user"
        assert isinstance(message.parts[0], TextPart) and message.parts[0].text.startswith(PROMPT.text)
        assert isinstance(message.parts[1], ImagePart)
    assert requests[0].messages[0].parts[0] == requests[1].messages[0].parts[0]
    assert requests[0].images != requests[1].images


def test_defaults_are_greedy_with_a_seed_and_room_for_a_page() -> None:
    assert DEFAULT_PARAMS.temperature == 0 and DEFAULT_PARAMS.seed is not None
    assert DEFAULT_PARAMS.max_tokens >= 1024


def test_a_good_answer_is_recorded_after_one_attempt() -> None:
    engine, _result, record = run([GOOD])
    assert len(engine.requests) == 1
    assert (record.status, record.text, record.attempts, record.fallback_text) == ("ok", GOOD, 1, None)
    assert record.parameters["sampling"]["temperature"] == 0.0
    assert record.usage["completion_tokens"] == len(GOOD.split())


def test_an_empty_answer_is_retried_with_warmer_penalised_sampling() -> None:
    engine, _, record = run(["", GOOD])
    first, second = (r.params for r in engine.requests)
    assert (first.temperature, first.repeat_penalty) == (0.0, 1.0)
    assert second.temperature > first.temperature and second.repeat_penalty > first.repeat_penalty
    assert second.seed != first.seed
    assert (record.status, record.text, record.attempts) == ("ok", GOOD, 2)
    assert record.parameters["sampling"]["temperature"] == second.temperature


def test_a_loop_twice_fails_the_page_and_keeps_the_text_layer_as_fallback() -> None:
    engine, result, record = run([LOOP, LOOP])
    assert len(engine.requests) == 2
    assert (record.status, record.reason, record.text) == ("failed", "repetition_loop", "")
    assert record.fallback_text == "Price list\nWidget 3.50 EUR"
    assert record.error is not None and "attempt 2: repetition loop" in record.error
    assert not result.transient


def test_a_failed_page_without_a_text_layer_has_no_fallback() -> None:
    _, _, record = run(["", " "], text_layer=None)
    assert (record.status, record.reason, record.fallback_text) == ("failed", "empty_output", None)


def test_an_engine_failure_is_a_transient_failed_page_not_an_exception() -> None:
    engine = FakeEngine(fail_on="pdf page")
    options = TranscribeOptions(prompt=PROMPT)
    attempts = transcribe(Client.in_process(engine=engine), page(1), options)
    result = summarize(attempts, options=options, model_id=engine.model_id)
    assert (result.status, result.reason, result.transient, result.attempts) == (
        "failed",
        "backend_error",
        True,
        2,
    )
    assert result.error is not None and "EngineError" in result.error


def test_the_anchor_puts_the_text_layer_after_the_image_and_is_capped() -> None:
    engine, _, _ = run([GOOD], anchor="text-layer", anchor_max_chars=12)
    parts = engine.requests[0].messages[0].parts
    assert isinstance(parts[1], ImagePart) and isinstance(parts[2], TextPart)
    assert ANCHOR_HEADER in parts[2].text and "Price list\nW" in parts[2].text
    assert "3.50 EUR" not in parts[2].text
    engine, _, _ = run([GOOD])
    assert "Price list" not in engine.requests[0].messages[0].text
