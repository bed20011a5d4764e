"""Page records to chunks, the shape vector stores ingest: text plus its source and page.

By default a page is one chunk. With ``size``, a page's text is cut into pieces of at most ``size``
characters, each starting ``overlap`` characters before the previous one ended; cuts fall on a paragraph
break, a line break, a sentence end or a space, in that order of preference, when one is near enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from pagescribe.pipeline.records import PageRecord

# Where a cut may fall, best first. A cut is taken only in the last third of a piece, so pieces stay large.
_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


@dataclass(frozen=True, slots=True)
class ChunkOptions:
    """``size=None`` makes one chunk per page; otherwise pieces of at most ``size`` characters."""

    size: int | None = None
    overlap: int = 0

    def __post_init__(self) -> None:
        if self.size is not None and self.size < 1:
            raise ValueError("chunk size must be positive")
        if self.overlap < 0 or (self.size is not None and self.overlap >= self.size):
            raise ValueError("chunk overlap must be at least 0 and smaller than the chunk size")


DEFAULT_CHUNKS = ChunkOptions()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One line of ``chunks.jsonl``. ``char_start``/``char_end`` index into the page's text."""

    id: str
    text: str
    source: str
    source_sha256: str | None
    document: str
    page: int
    page_count: int | None
    chunk: int
    char_start: int
    char_end: int
    origin: str
    model: str | None
    prompt_id: str | None

    def to_json(self) -> dict[str, Any]:
        """The chunk as written to ``chunks.jsonl``."""
        return asdict(self)


def split_text(text: str, *, size: int, overlap: int = 0) -> list[tuple[int, int]]:
    """``(start, end)`` spans covering ``text`` in pieces of at most ``size`` characters."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            end = _cut(text, start, end)
        spans.append((start, end))
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return spans


def _cut(text: str, start: int, end: int) -> int:
    floor = start + (end - start) * 2 // 3
    for sep in _SEPARATORS:
        at = text.rfind(sep, floor, end)
        if at != -1:
            return at + len(sep)
    return end


def page_chunks(record: PageRecord, options: ChunkOptions) -> Iterator[Chunk]:
    """The chunks of one page: its text, or its text layer when the model failed; none for empty pages."""
    text, origin = (record.text, "model") if record.status == "ok" else (record.fallback_text or "", "text_layer")
    if record.page is None or not text.strip():
        return
    spans = [(0, len(text))] if options.size is None else split_text(text, size=options.size, overlap=options.overlap)
    for index, (start, end) in enumerate(spans):
        yield Chunk(
            id=f"{record.document}#page={record.page}&chunk={index}",
            text=text[start:end],
            source=record.source,
            source_sha256=record.source_sha256,
            document=record.document,
            page=record.page,
            page_count=record.page_count,
            chunk=index,
            char_start=start,
            char_end=end,
            origin=origin,
            model=record.model,
            prompt_id=record.prompt_id,
        )


def chunk_records(records: Iterable[PageRecord], options: ChunkOptions) -> Iterator[Chunk]:
    """Chunks of many pages, in the order of the records."""
    for record in records:
        yield from page_chunks(record, options)
