"""Chunks for vector stores: one per page by default, or pieces of bounded size with overlap."""

from __future__ import annotations

import itertools

import pytest

from pagescribe.pipeline.chunking import ChunkOptions, chunk_records, split_text
from pagescribe.pipeline.records import PageRecord, PageStatus

TEXT = (
    "First paragraph about the quarterly revenue of the northern region.\n\n"
    "Second paragraph: the process flow starts with ingestion, then rendering. "
    "Then description follows, and the results are written to disk. "
    "Third sentence closes it."
)


def record(page: int, text: str, *, status: PageStatus = "ok", fallback: str | None = None) -> PageRecord:
    return PageRecord(
        source="docs/report.pdf", source_sha256="ab" * 32, document="report", page=page, page_count=3,
        status=status, text=text, fallback_text=fallback, model="m", prompt_id="document-x",
    )  # fmt: skip


@pytest.mark.parametrize(("size", "overlap"), [(40, 0), (60, 15), (25, 5), (500, 0)])
def test_pieces_cover_the_text_within_the_size_with_the_overlap(size: int, overlap: int) -> None:
    spans = split_text(TEXT, size=size, overlap=overlap)
    assert spans[0][0] == 0 and spans[-1][1] == len(TEXT)
    assert all(0 < end - start <= size for start, end in spans)
    for (_, prev_end), (start, _) in itertools.pairwise(spans):
        assert start <= prev_end and prev_end - start <= overlap


def test_cuts_prefer_paragraph_and_sentence_ends() -> None:
    spans = split_text(TEXT, size=100)
    assert TEXT[: spans[0][1]].endswith("region.\n\n")
    assert all(TEXT[start:end].rstrip()[-1] in ".:," for start, end in spans[:-1])


def test_one_chunk_per_page_carrying_source_and_page_by_default() -> None:
    chunks = list(chunk_records([record(1, "Page one text."), record(2, "Page two text.")], ChunkOptions()))
    assert [(c.page, c.text, c.source, c.document) for c in chunks] == [
        (1, "Page one text.", "docs/report.pdf", "report"),
        (2, "Page two text.", "docs/report.pdf", "report"),
    ]
    assert len({c.id for c in chunks}) == 2


def test_split_chunks_point_back_into_the_page_text() -> None:
    chunks = list(chunk_records([record(3, TEXT)], ChunkOptions(size=80, overlap=10)))
    assert len(chunks) > 2 and {c.page for c in chunks} == {3}
    assert all(TEXT[c.char_start : c.char_end] == c.text for c in chunks)
    assert [c.chunk for c in chunks] == list(range(len(chunks)))


def test_a_failed_page_contributes_its_text_layer_and_a_blank_page_nothing() -> None:
    failed = record(1, "", status="failed", fallback="Text from the PDF itself.")
    blank = record(2, "", status="blank")
    chunks = list(chunk_records([failed, blank], ChunkOptions()))
    assert [(c.page, c.text, c.origin) for c in chunks] == [(1, "Text from the PDF itself.", "text_layer")]


def test_bad_chunk_options_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        ChunkOptions(size=10, overlap=10)
    with pytest.raises(ValueError, match="positive"):
        ChunkOptions(size=0)
