"""What the framework loaders share: a backend from the same choices ``convert`` offers, and documents as
``(text, metadata)`` items, one per page or per chunk, read from a conversion run.

The backend is a ``Client`` (or an ``Engine``) you pass, else a pagescribe server (``url``), a SageMaker endpoint
(``endpoint``) or the model in this process (``model``, default ``$PAGESCRIBE_MODEL``), as ``convert --url``,
``--endpoint`` and ``--model`` choose. Pages come as the conversion finishes them; chunks once each run is done
(sections may run over any page). The run's files go to ``out_dir`` (which keeps its resume cache: a second load
of the same files asks the model nothing) or to a temporary folder.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

from pagescribe.client import Client
from pagescribe.engine.base import Engine
from pagescribe.errors import InvalidRequest
from pagescribe.pipeline.chunking import Chunk, ChunkOptions, chunk_records, page_text
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.records import PageRecord
from pagescribe.pipeline.runner import Conversion
from pagescribe.pipeline.writers import page_order

log = logging.getLogger("pagescribe.integrations")

Mode = Literal["page", "chunk"]
PathLike = str | Path


@dataclass
class Backend:
    """Where pages go: ``client`` (a ``Client`` or an ``Engine``), else ``url``, ``endpoint`` or ``model``."""

    client: Client | Engine | None = None
    url: str | None = None
    endpoint: str | None = None
    region: str | None = None
    model: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def open(self, stack: ExitStack) -> Client | Engine:
        """The backend to convert with; one made here is closed with ``stack``."""
        chosen = [name for name in ("client", "url", "endpoint", "model") if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise InvalidRequest(f"give one of client, url, endpoint and model, not {' and '.join(chosen)}")
        if self.client is not None:
            return self.client
        if self.url is not None:
            made = Client.for_url(self.url, **self.settings)
        elif self.endpoint is not None:
            made = Client.for_endpoint(self.endpoint, region=self.region, **self.settings)
        else:
            made = Client.in_process(self.model, **self.settings)
        return stack.enter_context(made)


@dataclass
class DocumentSource:
    """Documents as ``(text, metadata)``: one per page (``mode="page"``) or per chunk (``mode="chunk"``)."""

    backend: Backend
    mode: Mode = "page"
    options: ConvertOptions = field(default_factory=ConvertOptions)
    out_dir: PathLike | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("page", "chunk"):
            raise InvalidRequest(f"mode is page or chunk, not {self.mode!r}", param="mode")

    def items(self, paths: Sequence[PathLike]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Convert ``paths`` and yield each page (as it is finished) or each chunk (at the end)."""
        with ExitStack() as stack:
            backend = self.backend.open(stack)
            out = self.out_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="pagescribe-load-"))
            conversion = Conversion(list(paths), out_dir=out, backend=backend, options=self.options)
            records: list[PageRecord] = []
            for record in conversion:
                if record.page is None:
                    log.warning("document skipped", extra={"source": record.source, "error": record.error})
                    continue
                if self.mode == "page":
                    item = page_item(record)
                    if item is not None:
                        yield item
                else:
                    records.append(record)
            if self.mode == "chunk":
                ordered = sorted(records, key=lambda r: (r.source, *page_order(r)))
                yield from (chunk_item(c, ordered) for c in chunk_records(ordered, self.options.chunks))


class LoaderArgs(TypedDict, total=False):
    """What every loader takes: ``mode``, the backend (``client``, ``url``, ``endpoint`` with ``region``, or
    ``model``; ``settings`` are further arguments for the ``Client`` made from them), the conversion's ``options``
    (``chunks`` replacing their chunking) and ``out_dir``."""

    mode: Mode
    client: Client | Engine
    url: str
    endpoint: str
    region: str
    model: str
    settings: dict[str, Any]
    options: ConvertOptions
    chunks: ChunkOptions
    out_dir: PathLike


def make_source(**args: Unpack[LoaderArgs]) -> DocumentSource:
    """The ``DocumentSource`` a loader's arguments describe."""
    backend = Backend(
        client=args.get("client"), url=args.get("url"), endpoint=args.get("endpoint"), region=args.get("region"),
        model=args.get("model"), settings=args.get("settings", {}),
    )  # fmt: skip
    options = with_chunks(args.get("options"), args.get("chunks"))
    return DocumentSource(backend, mode=args.get("mode", "page"), options=options, out_dir=args.get("out_dir"))


def page_item(record: PageRecord) -> tuple[str, dict[str, Any]] | None:
    """A page's text (the text layer when the model failed) and its metadata; ``None`` for pages without text."""
    text, origin = page_text(record)
    if not text.strip():
        return None
    metadata: dict[str, Any] = {
        "source": record.source,
        "document": record.document,
        "page": record.page,
        "page_count": record.page_count,
        "route": _route(record, origin),
        "model": record.model,
        "prompt_id": record.prompt_id,
        "status": record.status,
    }
    if record.confidence is not None:
        metadata["confidence"] = record.confidence
    return text, metadata


def chunk_item(chunk: Chunk, records: list[PageRecord]) -> tuple[str, dict[str, Any]]:
    """A chunk's text and its metadata: where it came from, its pages and spans, its heading path."""
    first = next((r for r in records if r.source == chunk.source and r.page == chunk.page), None)
    metadata: dict[str, Any] = {
        "source": chunk.source,
        "document": chunk.document,
        "page": chunk.page,
        "pages": chunk.pages,
        "spans": chunk.spans,
        "headings": chunk.headings,
        "chunk": chunk.chunk,
        "chunk_id": chunk.id,
        "route": _route(first, chunk.origin) if first is not None else chunk.origin,
        "model": chunk.model,
        "prompt_id": chunk.prompt_id,
    }
    if chunk.tokens is not None:
        metadata["tokens"] = chunk.tokens
    return chunk.text, metadata


def _route(record: PageRecord, origin: str) -> str:
    """How the page's text was made: the record's route when the pipeline chose one, else its origin (``model``,
    or ``text_layer`` when the model failed and the PDF's own text stands in)."""
    route = getattr(record, "route", None)
    return str(route) if route else origin


def as_paths(paths: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [paths] if isinstance(paths, str | Path) else list(paths)


def with_chunks(options: ConvertOptions | None, chunks: ChunkOptions | None) -> ConvertOptions:
    """``options`` (default: ``ConvertOptions()``) with ``chunks`` in place of its chunking, when given."""
    options = options or ConvertOptions()
    return options if chunks is None else dataclasses.replace(options, chunks=chunks)
