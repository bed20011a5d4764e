"""granite-docling's DocTags: special tokens kept through the real decoder, turned into Markdown in the page record,
and never parsed out of request text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from familymodels import family_model
from pagescribe.cli import main
from pagescribe.engine import scheduler
from pagescribe.engine.factory import build_engine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.engine.sinks import collect
from pagescribe.engine.tokens import TokenizedPrompt
from pagescribe.images import image_from_pil
from pagescribe.models.families import DOCTAGS
from pagescribe.pipeline import ConvertOptions, convert
from pagescribe.types import GenerationRequest, ImagePart, Message, SamplingParams, TextPart

pytestmark = pytest.mark.integration

# One page as granite-docling writes it: a heading, a table in OTSL (header cells, rows ending in <nl>), a paragraph.
DOCTAGS_PAGE = (
    "<doctag><section_header_level_1><loc_40><loc_30><loc_300><loc_50>Invoice 42</section_header_level_1>"
    "<otsl><loc_40><loc_60><loc_460><loc_160><ched>Item<ched>Price<nl><fcel>Paper<fcel>3.50<nl>"
    "<fcel>Ink<fcel>12.00<nl></otsl>"
    "<text><loc_40><loc_180><loc_300><loc_200>Thank you for your order.</text></doctag>"
)
MARKDOWN_PAGE = """## Invoice 42

| Item   |   Price |
|--------|---------|
| Paper  |    3.50 |
| Ink    |   12.00 |

Thank you for your order."""


@pytest.fixture(scope="module")
def granite() -> Iterator[LlamaCppEngine]:
    engine = build_engine(EngineOptions(ctx=2048, threads=2), files=family_model("granite-docling"))
    engine.load()
    yield engine
    engine.close()


def special_tokens(engine: LlamaCppEngine, text: str) -> list[int]:
    """``text`` tokenized with special tokens parsed: the ids granite-docling would generate for it."""
    import llama_cpp

    native = engine._scheduler.native  # type: ignore[union-attr]
    data = text.encode()
    out = (llama_cpp.llama_token * (len(data) + 8))()
    n = llama_cpp.llama_tokenize(native.vocab, data, len(data), out, len(out), False, True)
    assert n > 0
    return [int(out[i]) for i in range(n)]


class Forced:
    """A sampler that answers with the given tokens, then end-of-text: the model 'writes' a known page."""

    def __init__(self, tokens: list[int], end: int) -> None:
        self.tokens = iter([*tokens, end])

    def sample(self, ctx: Any, index: int) -> int:
        return next(self.tokens)

    def close(self) -> None:
        pass


@pytest.fixture
def forced_doctags(granite: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import llama_cpp

    tokens = special_tokens(granite, DOCTAGS_PAGE)
    end = int(llama_cpp.llama_vocab_eos(granite._scheduler.native.vocab))  # type: ignore[union-attr]
    monkeypatch.setattr(scheduler, "Sampler", lambda model, vocab, params: Forced(tokens, end))
    return tokens


def page_png(path: Path) -> Path:
    img = Image.new("RGB", (850, 1100), "white")
    ImageDraw.Draw(img).text((60, 60), "Invoice 42", fill="black")
    img.save(path)
    return path


def test_doctags_are_special_tokens_of_the_vocabulary(granite: LlamaCppEngine, forced_doctags: list[int]) -> None:
    # every tag is one token (the 500 locations included), so the answer below really goes through them
    assert len(special_tokens(granite, "".join(DOCTAGS))) == len(DOCTAGS)
    assert len(forced_doctags) < len(DOCTAGS_PAGE) // 2


def test_doctags_written_by_the_model_reach_the_answer_and_become_a_markdown_table(
    granite: LlamaCppEngine, forced_doctags: list[int], tmp_path: Path
) -> None:
    options = ConvertOptions(route="vlm", family="granite-docling", params=SamplingParams(max_tokens=200, seed=0))
    [record] = list(convert([page_png(tmp_path / "invoice.png")], out_dir=tmp_path / "out", backend=granite,
                            options=options))
    assert record.status == "ok" and record.finish_reason == "stop"
    assert record.raw_text == DOCTAGS_PAGE  # decoded with its special tokens, kept in the record
    assert record.text == MARKDOWN_PAGE
    assert record.usage["completion_tokens"] == len(forced_doctags)
    written = json.loads((tmp_path / "out" / "invoice.jsonl").read_text())
    assert written["raw_text"] == DOCTAGS_PAGE and written["text"] == MARKDOWN_PAGE
    assert MARKDOWN_PAGE in (tmp_path / "out" / "invoice.md").read_text()


def test_the_same_answer_streamed_over_the_engine_keeps_every_tag(
    granite: LlamaCppEngine, forced_doctags: list[int]
) -> None:
    image = image_from_pil(Image.new("RGB", (640, 480), "white"))
    request = GenerationRequest(
        messages=(Message("user", (ImagePart(image), TextPart("Convert this page to docling."))),),
        params=SamplingParams(max_tokens=200, seed=0),
    )
    assert collect(granite, request).text == DOCTAGS_PAGE


def test_doctags_typed_in_a_request_stay_text(granite: LlamaCppEngine) -> None:
    typed = "<otsl><fcel>1<nl></otsl>"
    request = GenerationRequest(messages=(Message.user(typed, image_from_pil(Image.new("RGB", (64, 64)))),))
    native = granite._scheduler.native  # type: ignore[union-attr]
    prompt = TokenizedPrompt(native, granite._pieces(request))
    try:
        assert not set(special_tokens(granite, "<otsl><fcel><nl></otsl>")) & set(prompt.keys)
    finally:
        prompt.close()


def test_describe_prints_markdown_and_keeps_the_doctags(
    forced_doctags: list[int], tmp_path: Path
) -> None:
    files = family_model("granite-docling")
    # describe loads its own engine: the forced sampler answers there too
    runner = CliRunner()
    png = page_png(tmp_path / "invoice.png")
    args = ["describe", str(png), "--model", str(files.text), "--mmproj", str(files.mmproj), "--ctx", "2048"]
    shown = runner.invoke(main, args)
    as_json = runner.invoke(main, [*args, "--json"])
    assert shown.exit_code == 0, shown.output
    assert MARKDOWN_PAGE in shown.output and "<doctag>" not in shown.output
    record = json.loads(as_json.output.splitlines()[-1])
    assert record["text"] == MARKDOWN_PAGE and record["raw_text"] == DOCTAGS_PAGE
