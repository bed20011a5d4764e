"""A document's pages as one Markdown text, cut into sections by its headings, and sections into token-sized pieces.

The model writes each page on its own, so a section that runs over a page break is split across page records;
joined again (pages in order, a blank line between them) the headings say where sections really begin. Each section
(a heading and what follows it, up to the next heading of any level) is cut by ``semantic-text-splitter``'s Markdown
splitter into pieces of at most ``size`` tokens that overlap by up to ``overlap`` tokens, so no piece mixes two
sections. Tokens are counted with the user's embedding-model tokenizer (a Hugging Face ``tokenizer.json``) when one is
given, else as words and punctuation marks (a lower bound of any sub-word tokenizer's count).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pagescribe.errors import InvalidRequest

#: An ATX heading line (``## Title``), up to three spaces of indentation, as CommonMark reads them.
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
#: The default token count: words and single punctuation marks (what a BERT-style pre-tokenizer splits into).
_WORDS = re.compile(r"\w+|[^\w\s]")
PAGE_BREAK = "\n\n"

Counter = Callable[[str], int]


def count_words(text: str) -> int:
    """Tokens as words and punctuation marks."""
    return len(_WORDS.findall(text))


@dataclass(frozen=True, slots=True)
class PageText:
    """One page's text and where it sits in the joined document text."""

    page: int
    text: str
    origin: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True, slots=True)
class Section:
    """``[start, end)`` of the document text under one heading path (outermost first; empty before any heading)."""

    start: int
    end: int
    headings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Piece:
    """A chunk of the document text: where it is, the heading path it belongs to, and its size in tokens."""

    start: int
    text: str
    headings: tuple[str, ...]
    tokens: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def join_pages(pages: Sequence[tuple[int, str, str]]) -> tuple[str, list[PageText]]:
    """``(page, text, origin)`` triples as one text (a blank line between pages) and each page's place in it."""
    placed: list[PageText] = []
    at = 0
    for page, text, origin in pages:
        placed.append(PageText(page, text, origin, at))
        at += len(text) + len(PAGE_BREAK)
    return PAGE_BREAK.join(p.text for p in placed), placed


def sections(text: str) -> list[Section]:
    """The sections of a Markdown text: a new one at every heading line outside fenced code."""
    starts: list[tuple[int, tuple[str, ...]]] = [(0, ())]
    path: list[tuple[int, str]] = []
    fenced = False
    at = 0
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (found := HEADING.match(line.rstrip("\r\n"))):
            level = len(found.group(1))
            path = [(lv, title) for lv, title in path if lv < level] + [(level, found.group(2))]
            starts.append((at, tuple(title for _, title in path)))
        at += len(line)
    bounds = [start for start, _ in starts[1:]] + [len(text)]
    return [Section(start, end, headings) for (start, headings), end in zip(starts, bounds, strict=True)
            if text[start:end].strip()]


def heading_path_at(found: Sequence[Section], offset: int) -> tuple[str, ...]:
    """The heading path in effect at ``offset``, given the text's sections."""
    paths = [s.headings for s in found if s.start <= offset]
    return paths[-1] if paths else ()


def split_sections(text: str, *, size: int, overlap: int, counter: Counter | None = None,
                   tokenizer: Any | None = None) -> list[Piece]:
    """The pieces of every section, in order: at most ``size`` tokens each, never across a heading."""
    from semantic_text_splitter import MarkdownSplitter

    if tokenizer is not None:
        splitter = MarkdownSplitter.from_huggingface_tokenizer(tokenizer, size, overlap=overlap)
        count: Counter = lambda piece: len(tokenizer.encode(piece, add_special_tokens=False).ids)  # noqa: E731
    else:
        count = counter or count_words
        splitter = MarkdownSplitter.from_callback(count, size, overlap=overlap)
    pieces: list[Piece] = []
    for section in sections(text):
        body = text[section.start : section.end]
        for offset, chunk in splitter.chunk_indices(body):
            pieces.append(Piece(section.start + offset, chunk, section.headings, count(chunk)))
    return pieces


def load_tokenizer(name: str) -> Any:
    """A Hugging Face tokenizer: a ``tokenizer.json`` file (or a folder holding one), else a hub model id."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - installed with the rag extra
        raise InvalidRequest(
            "counting tokens with a model's tokenizer needs the tokenizers package: pip install 'pagescribe[rag]'",
            param="tokenizer",
        ) from exc
    path = Path(name)
    if path.is_dir():
        path = path / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path)) if path.is_file() else Tokenizer.from_pretrained(name)
    except Exception as exc:  # tokenizers raises plain Exceptions for missing files and bad JSON
        raise InvalidRequest(f"cannot load the tokenizer {name!r}: {exc}", param="tokenizer") from exc
    tokenizer.no_truncation()
    return tokenizer
