"""Page records to chunks, the shape vector stores ingest: text plus its source, pages and heading path.

``by="page"`` (the default): a page is one chunk; with ``size``, a page's text is cut into pieces of at most
``size`` characters, each starting ``overlap`` characters before the previous one ended; cuts fall on a paragraph
break, a line break, a sentence end or a space, in that order of preference, when one is near enough.

``by="section"``: the document's pages are read as one Markdown text and cut by its headings, then into pieces of at
most ``size`` tokens (``sections.py``): a section that runs over a page break stays one section, no chunk mixes two
sections, and each chunk names the pages (and the character spans in each) it covers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pagescribe.pipeline.records import PageRecord
from pagescribe.pipeline.sections import PageText, Piece, heading_path_at, join_pages, load_tokenizer, sections
from pagescribe.pipeline.sections import split_sections as split_by_sections

#: Tokens per chunk when chunking by section and no size is given.
DEFAULT_SECTION_TOKENS = 512

# Where a cut may fall, best first. A cut is taken only in the last third of a piece, so pieces stay large.
_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


@dataclass(frozen=True, slots=True)
class ChunkOptions:
    """``by="page"``: one chunk per page (``size=None``) or pieces of at most ``size`` characters.
    ``by="section"``: the document cut by headings into pieces of at most ``size`` tokens (default 512), counted
    with ``tokenizer`` (a ``tokenizer.json`` path or a Hugging Face model id) when given."""

    size: int | None = None
    overlap: int = 0
    by: Literal["page", "section"] = "page"
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.by not in ("page", "section"):
            raise ValueError(f"chunk by page or section, not {self.by!r}")
        if self.size is not None and self.size < 1:
            raise ValueError("chunk size must be positive")
        if self.overlap < 0 or (self.limit is not None and self.overlap >= self.limit):
            raise ValueError("chunk overlap must be at least 0 and smaller than the chunk size")
        if self.tokenizer is not None and self.by != "section":
            raise ValueError("a tokenizer counts the tokens of section chunks: give it with by='section'")

    @property
    def limit(self) -> int | None:
        """The size a chunk may have: characters by page, tokens by section."""
        return self.size or (DEFAULT_SECTION_TOKENS if self.by == "section" else None)


DEFAULT_CHUNKS = ChunkOptions()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One line of ``chunks.jsonl``. ``page`` is the first page it covers, ``pages`` all of them, and ``spans`` the
    characters it takes from each (``char_start`` indexes the first page's text, ``char_end`` the last page's);
    ``headings`` is the heading path it belongs to (outermost first), ``tokens`` its size for section chunks."""

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
    pages: list[int] = field(default_factory=list)
    spans: list[dict[str, int]] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    tokens: int | None = None

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


def page_text(record: PageRecord) -> tuple[str, str]:
    """A page's text for chunks and where it came from: the model's, or the text layer when the model failed."""
    if record.status == "ok":
        return record.text, "model"
    return record.fallback_text or "", "text_layer"


def page_chunks(record: PageRecord, options: ChunkOptions) -> Iterator[Chunk]:
    """The chunks of one page: its text, or its text layer when the model failed; none for empty pages."""
    text, origin = page_text(record)
    if record.page is None or not text.strip():
        return
    spans = [(0, len(text))] if options.size is None else split_text(text, size=options.size, overlap=options.overlap)
    found = sections(text)
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
            pages=[record.page],
            spans=[{"page": record.page, "char_start": start, "char_end": end}],
            headings=list(heading_path_at(found, start)),
        )


def section_chunks(records: list[PageRecord], options: ChunkOptions, tokenizer: Any | None = None) -> Iterator[Chunk]:
    """The chunks of one document's pages, by section (records in page order)."""
    pages = [(r, *page_text(r)) for r in records if r.page is not None]
    pages = [(r, text, origin) for r, text, origin in pages if text.strip()]
    if not pages:
        return
    text, placed = join_pages([(r.page or 0, t, origin) for r, t, origin in pages])
    limit = options.limit or DEFAULT_SECTION_TOKENS
    first = pages[0][0]
    for index, piece in enumerate(split_by_sections(text, size=limit, overlap=options.overlap, tokenizer=tokenizer)):
        covered = [p for p in placed if p.start < piece.end and piece.start < p.end]
        spans = [_span(p, piece) for p in covered]
        origins = {p.origin for p in covered}
        yield Chunk(
            id=f"{first.document}#chunk={index}",
            text=piece.text,
            source=first.source,
            source_sha256=first.source_sha256,
            document=first.document,
            page=spans[0]["page"],
            page_count=first.page_count,
            chunk=index,
            char_start=spans[0]["char_start"],
            char_end=spans[-1]["char_end"],
            origin=origins.pop() if len(origins) == 1 else "mixed",
            model=first.model,
            prompt_id=first.prompt_id,
            pages=[s["page"] for s in spans],
            spans=spans,
            headings=list(piece.headings),
            tokens=piece.tokens,
        )


def _span(page: PageText, piece: Piece) -> dict[str, int]:
    start, end = max(page.start, piece.start), min(page.end, piece.end)
    return {"page": page.page, "char_start": start - page.start, "char_end": end - page.start}


def chunk_records(
    records: Iterable[PageRecord], options: ChunkOptions, *, tokenizer: Any | None = None
) -> Iterator[Chunk]:
    """Chunks of many pages, in the order of the records (by section: each document's pages together), section
    tokens counted with ``tokenizer`` (default: the one ``options`` names, loaded now)."""
    if options.by == "page":
        for record in records:
            yield from page_chunks(record, options)
        return
    if tokenizer is None and options.tokenizer:
        tokenizer = load_tokenizer(options.tokenizer)
    for _, document in itertools.groupby(records, key=lambda r: (r.source, r.document)):
        yield from section_chunks(list(document), options, tokenizer)
