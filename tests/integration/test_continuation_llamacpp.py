"""No page lost to a time limit, through the real llama.cpp engine on the tiny model: an answer cut by its budget
(even before its first token) is continued to the same text one uncut request gives, in process and through a
server under load, and the work a cut request did is reused, not redone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from pagescribe.cli import main
from pagescribe.client import Client
from pagescribe.engine.factory import build_engine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.engine.sinks import collect
from pagescribe.engine.tokens import span
from pagescribe.images import image_from_pil
from pagescribe.models.files import ModelFiles
from pagescribe.types import GenerationRequest, ImageInput, ImagePart, Message, SamplingParams, TextPart
from pdfgen import text_page, write_pdf
from servers import LiveServer

INSTRUCTIONS = "You will be provided with an image of a page. Describe the content in technical terms. " * 4
LONG = "Read every line of the page, keep the order of the columns, name each figure and each table. " * 80


def page(n: int) -> ImageInput:
    img = Image.new("RGB", (320, 240), ("white", "navy", "orange", "teal")[n % 4])
    ImageDraw.Draw(img).text((20, 20), f"page {n}", fill="black")
    return image_from_pil(img)


def ask(image: ImageInput, *, text: str = INSTRUCTIONS, max_tokens: int = 40, budget: float | None = None,
        prefix: str | None = None) -> GenerationRequest:  # fmt: skip
    messages = [Message("user", (TextPart(text), ImagePart(image)))]
    if prefix is not None:
        messages.append(Message("assistant", (TextPart(prefix),)))
    return GenerationRequest(tuple(messages), SamplingParams(max_tokens=max_tokens, seed=0), time_limit_s=budget)


@pytest.fixture(scope="module")
def engine(tiny_model: ModelFiles) -> Iterator[LlamaCppEngine]:
    # A large context, so that only max_tokens or the budget ends an answer; small batches, so that one step of a
    # long prompt is short and a budget of a few milliseconds cuts it.
    engine = build_engine(EngineOptions(ctx=8192, threads=2, slots=2, batch_size=64), files=tiny_model)
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def uncut(tiny_model: ModelFiles) -> Iterator[Client]:
    """Another engine, for the answers no time limit cut (so that no cache is shared with the cut ones)."""
    engine = build_engine(EngineOptions(ctx=8192, threads=2, slots=2, batch_size=64), files=tiny_model)
    engine.load()
    client = Client.in_process(engine=engine)
    client.max_continuations = 0
    yield client
    engine.close()


def test_greedy_output_continued_across_time_limits_equals_one_uncut_request(
    engine: LlamaCppEngine, uncut: Client
) -> None:
    whole = uncut.generate(ask(page(1), max_tokens=48))
    assert whole.finish_reason == "length" and whole.text
    cut = Client.in_process(engine=engine).generate(ask(page(1), max_tokens=48, budget=0.012))
    assert cut.continuations >= 2, "the budget never cut the answer"
    assert (cut.text, cut.finish_reason, cut.usage.completion_tokens) == (whole.text, "length", 48)


def test_a_budget_shorter_than_the_prompt_still_ends_in_the_uncut_answer(
    engine: LlamaCppEngine, uncut: Client
) -> None:
    # ~1,800 prompt positions in steps of 64 take ~50 ms here; 25 ms cuts the prompt, and gives tokens later.
    first = collect(engine, ask(page(2), text="First. " + LONG, max_tokens=24, budget=0.025))
    assert (first.finish_reason, first.usage.completion_tokens, first.text) == ("time_limit", 0, "")
    whole = uncut.generate(ask(page(4), text="Second. " + LONG, max_tokens=24))
    cut = Client.in_process(engine=engine).generate(ask(page(4), text="Second. " + LONG, max_tokens=24, budget=0.025))
    assert cut.continuations >= 2 and (cut.text, cut.finish_reason) == (whole.text, "length")
    assert cut.usage.completion_tokens == 24


def test_a_continued_request_reuses_what_the_cut_one_evaluated_a_half_done_image_included(
    tiny_model: ModelFiles,
) -> None:
    # Steps of 8 positions: the tiny model's 16-token image takes two, and a budget of 1 ms cuts between them.
    options = EngineOptions(ctx=2048, threads=2, slots=1, batch_size=8)
    with closing(build_engine(options, files=tiny_model)) as fresh:
        fresh.load()
        whole = collect(fresh, ask(page(3), text="Page:", max_tokens=8))
    with closing(build_engine(options, files=tiny_model)) as cut_engine:
        cut_engine.load()
        first = collect(cut_engine, ask(page(3), text="Page:", max_tokens=8, budget=0.001))
        assert first.finish_reason == "time_limit" and first.usage.completion_tokens == 0
        [slot] = cut_engine._scheduler.slots  # type: ignore[union-attr]
        assert slot.partial is not None, "the cut did not fall inside the image"
        before, rows = sum(span(k) for k in slot.cached), slot.partial[1]
        then = collect(cut_engine, ask(page(3), text="Page:", max_tokens=8, prefix=""))
    assert then.usage.cached_tokens == before + rows  # the text and the image rows already decoded, not redone
    assert (then.text, then.finish_reason) == (whole.text, "length")


def test_convert_through_a_server_that_cuts_every_page_records_the_uncut_text(
    tiny_model: ModelFiles, tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "doc.pdf", [text_page(f"Section {n}", [f"Line {n} of the page."]) for n in range(4)])

    def convert(out: Path, *, slots: int, **server: object) -> list[dict[str, object]]:
        options = EngineOptions(ctx=8192, threads=2, slots=slots, batch_size=64)
        with LiveServer(build_engine(options, files=tiny_model), **server) as live:
            args = ["convert", str(pdf), "--out", str(out), "--url", live.url, "-j", "4", "--max-tokens", "160",
                    "--route", "vlm", "--max-side", "448", "--progress", "quiet"]  # fmt: skip
            result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in (out / "doc.jsonl").read_text().splitlines()]

    # Four clients press on one slot, with a budget (counted from arrival, so waiting spends it) of one and a half
    # times what one page took uncut: the pages that wait for two others are cut, and get a step each turn until
    # theirs comes.
    # One slot, because greedy text is the same only for the same batches: llama.cpp's CPU kernels round a
    # token's logits differently when other sequences share its batch (by ~1e-6, enough to flip a near tie of
    # the random-weight model), with or without a time limit.
    whole = convert(tmp_path / "whole", slots=1)
    page_s = min(sum(float(str(v)) for k, v in dict(r["timings"]).items() if k != "render_ms") for r in whole) / 1000
    budget = 1.5 * page_s + 0.02
    cut = convert(tmp_path / "cut", slots=1, time_limit_s=budget)
    assert all(r["status"] == "ok" and r["finish_reason"] in ("stop", "length") for r in cut)
    assert sum(int(str(r["continuations"])) for r in cut) >= 2
    assert [r["text"] for r in cut] == [r["text"] for r in whole]
    # Batched on four slots, the same budget loses no page either.
    batched = convert(tmp_path / "batched", slots=4, time_limit_s=budget)
    assert all(r["status"] == "ok" and r["finish_reason"] in ("stop", "length") for r in batched)
    assert sum(int(str(r["continuations"])) for r in batched) >= 4
