"""Chunks by section: a 30-page PDF whose sections run over page breaks, converted by a stand-in for a faithful
model (FakeEngine answering each page with its own text layer, headings and all), cut by headings and tokens."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from pagescribe.client import Client
from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline.chunking import ChunkOptions, chunk_records
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.records import PageRecord
from pagescribe.pipeline.runner import Conversion
from pagescribe.pipeline.sections import count_words, sections
from pagescribe.pipeline.transcribe import ANCHOR_HEADER
from pagescribe.types import GenerationRequest, SamplingParams
from pdfgen import text_page, write_pdf

LINES_PER_PAGE = 30
WORDS = ["revenue", "region", "pipeline", "render", "token", "model", "page", "table", "figure", "value", "north",
         "south", "quarter", "growth"]  # fmt: skip
HEADING_LINE = re.compile(r"^ {0,3}#{1,6} ", re.MULTILINE)


def document_lines(rng: random.Random) -> list[str]:
    """Sections of 8 to 50 lines under headings of levels 1 to 3: most of them cross a page break."""
    lines: list[str] = []
    number = 0
    while len(lines) < 30 * LINES_PER_PAGE - 50:
        number += 1
        level = 1 if number % 7 == 1 else rng.choice((2, 2, 3))
        lines.append(f"{'#' * level} Section {number} {rng.choice(WORDS).title()}")
        for _ in range(rng.randint(8, 50)):
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 11))) + ".")
    return lines


@pytest.fixture(scope="module")
def thirty_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = document_lines(random.Random(16))
    pages = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    assert len(pages) == 30
    return write_pdf(tmp_path_factory.mktemp("pdf") / "handbook.pdf", [text_page("", page) for page in pages])


def faithful(request: GenerationRequest) -> str:
    """What a perfect model would say: the page's own text (given as the anchor)."""
    return request.messages[0].text.split(ANCHOR_HEADER, 1)[1].strip()


def convert(pdf: Path, out: Path, chunks: ChunkOptions) -> list[dict[str, Any]]:
    options = ConvertOptions(
        anchor="text-layer", anchor_max_chars=100_000, chunks=chunks, params=SamplingParams(max_tokens=100_000, seed=0)
    )
    with Client.in_process(engine=FakeEngine(answer=faithful, n_slots=2)) as client:
        list(Conversion([pdf], out_dir=out, backend=client, options=options))
    return [json.loads(line) for line in (out / "chunks.jsonl").read_text().splitlines()]


def page_texts(out: Path) -> dict[int, str]:
    return {r["page"]: r["text"] for r in map(json.loads, (out / "handbook.jsonl").read_text().splitlines())}


def check(chunks: list[dict[str, Any]], texts: dict[int, str], *, size: int, count: Any) -> None:
    document = "\n\n".join(texts[p] for p in sorted(texts))
    for chunk in chunks:
        headings = HEADING_LINE.findall(chunk["text"])
        # never two sections: a heading can only open a chunk
        assert len(headings) <= 1 and (not headings or chunk["text"].startswith(headings[0])), chunk["text"][:200]
        assert 0 < count(chunk["text"]) <= size and chunk["tokens"] == count(chunk["text"])
        # its pages and spans point at the text it holds, and its heading path is the one in force there
        assert chunk["pages"] == [s["page"] for s in chunk["spans"]] and chunk["page"] == chunk["pages"][0]
        pieces = [texts[s["page"]][s["char_start"] : s["char_end"]] for s in chunk["spans"]]
        assert "\n\n".join(pieces) == chunk["text"]
        assert chunk["headings"] and chunk["headings"][-1].startswith("Section ")
    assert any(len(c["pages"]) > 1 for c in chunks)  # sections crossed page breaks and their chunks did too
    in_order = [s.headings for s in sections(document)]
    assert [tuple(c["headings"]) for c in chunks if HEADING_LINE.match(c["text"])] == in_order


def test_thirty_pages_chunk_by_section_within_the_token_size(thirty_pages: Path, tmp_path: Path) -> None:
    chunks = convert(thirty_pages, tmp_path, ChunkOptions(by="section", size=60, overlap=10))
    check(chunks, page_texts(tmp_path), size=60, count=count_words)


def test_the_users_tokenizer_counts_the_tokens(thirty_pages: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(WORDS * 3, trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    chunks = convert(thirty_pages, tmp_path / "out", ChunkOptions(by="section", size=80, tokenizer=str(path)))
    words = sum(count_words(c["text"]) for c in chunks)
    tokens = sum(c["tokens"] for c in chunks)
    check(chunks, page_texts(tmp_path / "out"), size=80, count=lambda t: len(tokenizer.encode(t).ids))
    assert tokens > words  # a small vocabulary splits words: its count, not the word count, decided the size


def test_page_chunks_stay_the_default_and_carry_pages_and_headings() -> None:
    record = PageRecord(source="a.pdf", source_sha256=None, document="a", page=4, page_count=9, status="ok",
                        text="Intro.\n\n## Costs\n\nThe costs.", model="m", prompt_id="p")  # fmt: skip
    [whole] = chunk_records([record], ChunkOptions())
    cut = list(chunk_records([record], ChunkOptions(size=12)))
    assert whole.pages == [4] and whole.spans == [{"page": 4, "char_start": 0, "char_end": len(record.text)}]
    assert whole.headings == [] and cut[-1].headings == ["Costs"] and whole.tokens is None


def test_bad_section_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="by='section'"):
        ChunkOptions(tokenizer="t.json")
    with pytest.raises(ValueError, match="overlap"):
        ChunkOptions(by="section", overlap=512)
    from pagescribe.errors import InvalidRequest

    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(InvalidRequest, match="cannot load the tokenizer"):
        Conversion([], out_dir=tmp_path / "o", backend=FakeEngine(),
                   options=ConvertOptions(chunks=ChunkOptions(by="section", tokenizer=str(tmp_path))))
