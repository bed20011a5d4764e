"""Run a conversion: plan the documents, render pages, route and transcribe them on worker threads, write the
outputs.

Each page goes the way the router picks (``pipeline.route``): blank, its text layer, OCR, or the vision model.
At most ``concurrency`` pages are in flight across all documents (rendered and not yet recorded), so memory
stays bounded however large the input. Pages render on the iterating thread (PDFium is single-threaded anyway)
while workers wait on the model. A page whose result is in the resume cache is recorded without asking the
model. Each document's files are written, atomically, when its last page is recorded; ``chunks.jsonl`` and
``summary.json`` when the run ends. Killed at any moment, the same run started again redoes only the pages
that had not finished.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pagescribe.client import Client
from pagescribe.engine.base import Engine
from pagescribe.errors import PagescribeError
from pagescribe.pipeline.assemble import DocumentInfo, error_record, page_record
from pagescribe.pipeline.cache import PageCache, cache_key
from pagescribe.pipeline.check import is_blank
from pagescribe.pipeline.chunking import ChunkOptions, chunk_records
from pagescribe.pipeline.errors import DocumentError, UnsupportedDocument
from pagescribe.pipeline.office import office_to_pdf
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.progress import ProgressSink, QuietProgress
from pagescribe.pipeline.records import PageRecord, Transcription
from pagescribe.pipeline.render import RenderedPage, count_pages, render_document
from pagescribe.pipeline.route import Routed, Router
from pagescribe.pipeline.sections import load_tokenizer
from pagescribe.pipeline.sources import DocumentKind, Source, discover, file_sha256
from pagescribe.pipeline.summary import RunSummary, summarize_run
from pagescribe.pipeline.transcribe import summarize, transcribe
from pagescribe.pipeline.writers import (
    CHUNKS_FILE,
    RESERVED_NAMES,
    SUMMARY_FILE,
    atomic_write_text,
    exclusive_output,
    json_line,
    page_order,
    write_document,
)

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Document:
    """A document's state during the run (mutable, touched only by the iterating thread)."""

    order: int
    info: DocumentInfo
    path: Path
    kind: DocumentKind | None
    pages: list[int] = field(default_factory=list)
    page_count: int | None = None
    error: PageRecord | None = None
    records: list[PageRecord] = field(default_factory=list)
    outstanding: int = 0
    rendered: bool = False
    written: bool = False


class Conversion:
    """One ``convert`` run: iterate it for the page records as they finish; ``summary`` is set at the end.

    ``backend`` is the ``Client`` that reaches the model (in process, a server or an endpoint), or an ``Engine``
    (used in process), or None when no page is to reach a model (``--route text`` or ``ocr``: a page that would
    need one fails with reason ``no_model``). ``model_id`` names the model in records and in the resume cache
    (default: the one the client reports, else where it sends pages).
    Raises ``OcrUnavailable`` when the options need Tesseract and it (or a language) is missing.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        out_dir: str | Path,
        backend: Client | Engine | None,
        options: ConvertOptions | None = None,
        progress: ProgressSink | None = None,
        model_id: str | None = None,
    ) -> None:
        self.paths = list(paths)
        self.out_dir = Path(out_dir)
        if backend is None or isinstance(backend, Client):
            self.client = backend
        else:
            self.client = Client.in_process(engine=backend)
        client = self.client
        self.model_id = model_id or (client.model_id() or client.target if client is not None else "none")
        self.options = options or ConvertOptions()
        self.router = Router(self.options.routing)
        self.progress = progress or QuietProgress()
        self.cache = PageCache(self.options.cache_dir or self.out_dir / ".pagescribe-cache")
        self.summary: RunSummary | None = None
        self._docs: list[_Document] = []
        # loaded now, so a wrong tokenizer is an error before any page is converted, not after all of them
        chunks = self.options.chunks
        self._tokenizer = load_tokenizer(chunks.tokenizer) if chunks.tokenizer else None

    @property
    def concurrency(self) -> int:
        """Pages in flight at most: the option, else the client's hint (the engine's slots, in process), else (no
        model) one per core."""
        hint = self.client.concurrency if self.client is not None else (os.cpu_count() or 1)
        return max(1, self.options.concurrency or hint)

    def __iter__(self) -> Iterator[PageRecord]:
        started = time.monotonic()
        sources = discover(self.paths, reserved=RESERVED_NAMES)
        with exclusive_output(self.out_dir):
            with tempfile.TemporaryDirectory(prefix="pagescribe-convert-") as work:
                self._docs = [self._plan(i, s, Path(work)) for i, s in enumerate(sources)]
                planned = sum(len(d.pages) for d in self._docs)
                self.progress.start(documents=len(self._docs), pages=planned)
                yield from self._process()
            self._finish(time.monotonic() - started)

    # -- planning ------------------------------------------------------------------------------------------

    def _plan(self, order: int, source: Source, work: Path) -> _Document:
        """Open (and for Office files, convert) the document and decide its pages; failures become records."""
        info = DocumentInfo(source=str(source.path), source_sha256=file_sha256(source.path), name=source.name)
        doc = _Document(order, info, source.path, source.kind)
        try:
            if source.kind is None:
                raise UnsupportedDocument(f"{source.path}: not a PDF, an image or an Office document")
            if source.kind == "office":
                doc.path, doc.kind = office_to_pdf(source.path, work_dir=work), "pdf"
            count = count_pages(doc.path, kind=doc.kind)
        except PagescribeError as exc:
            doc.error = _error(info, exc)
            return doc
        wanted = self.options.pages
        doc.page_count = count
        doc.pages = [p for p in range(1, count + 1) if wanted is None or p in wanted]
        return doc

    # -- the page loop -------------------------------------------------------------------------------------

    def _process(self) -> Iterator[PageRecord]:
        pending: set[Future[tuple[_Document, PageRecord]]] = set()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="pagescribe-page") as pool:
            try:
                for doc in self._docs:
                    for item in self._render(doc):
                        if isinstance(item, PageRecord):
                            yield self._record(doc, item)
                            continue
                        while len(pending) >= self.concurrency:
                            done, pending = wait(pending, return_when=FIRST_COMPLETED)
                            yield from (self._record(*f.result(), from_worker=True) for f in done)
                        doc.outstanding += 1
                        pending.add(pool.submit(self._convert_page, doc, item))
                    doc.rendered = True
                    self._maybe_write(doc)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (self._record(*f.result(), from_worker=True) for f in done)
            finally:
                for future in pending:
                    future.cancel()

    def _render(self, doc: _Document) -> Iterator[RenderedPage | PageRecord]:
        """The document's pages still to transcribe, and records for pages already done (cache, blank)."""
        if doc.error is not None:
            yield doc.error
        if not doc.pages:
            return
        opts = self.options
        routing = opts.routing
        analyze = not (routing.mode == "vlm" and routing.anchor in ("none", "text-layer"))
        pages = render_document(
            doc.path, kind=doc.kind, dpi=opts.dpi, max_side=opts.max_side, pages=doc.pages,
            analyze=analyze, ocr=self.router.ocr_wanted,
        )
        try:
            for page in pages:
                hit = None if opts.force else self.cache.get(self._key(page))
                if hit is not None:
                    yield self._page_record(doc, page, hit, cached=True)
                elif opts.skip_blank and page.text_layer is None and is_blank(page.image):
                    yield self._page_record(doc, page, _blank(self._parameters()))
                else:
                    yield page
        except PagescribeError as exc:
            yield _error(doc.info, exc, page_count=doc.page_count)

    def _key(self, page: RenderedPage) -> str:
        opts = self.options
        return cache_key(
            image_sha256=page.image.sha256,
            prompt_id=opts.transcribe.prompt.id,
            parameters=self._parameters(),
            model_id=self.model_id,
            anchor=page.text_layer,
        )

    def _parameters(self) -> dict[str, Any]:
        """What decides a page's text: the model's options and the router's (so the route is in the cache key)."""
        return {**self.options.transcribe.describe(), **self.options.routing.describe()}

    def _convert_page(self, doc: _Document, page: RenderedPage) -> tuple[_Document, PageRecord]:
        """On a worker thread: route the page, read it that way (the model with the retry policy), cache the
        result, build the record."""
        routed = self.router.route(page)
        if routed.route in ("text", "ocr"):
            result = self._routed(routed)
        elif self.client is None:
            result = self._no_model(routed)
        else:
            opts = self.options.transcribe
            attempts = transcribe(self.client, page, opts, anchor=routed.anchor)
            result = summarize(attempts, options=opts, model_id=self.model_id, extra=self.options.routing.describe())
            timings = {**result.timings, **_ocr_timing(routed)}
            result = dataclasses.replace(result, route="vlm", route_reason=routed.reason, timings=timings)
        self.cache.put(self._key(page), result)
        return doc, self._page_record(doc, page, result)

    def _routed(self, routed: Routed) -> Transcription:
        """A page read without the model: its text layer or Tesseract's text."""
        engine = "pdfium text layer" if routed.route == "text" else f"tesseract ({self.options.ocr_lang})"
        return Transcription(
            status="ok", text=routed.text.strip(), finish_reason=None, model=engine,
            parameters=self._parameters(), usage={}, timings=_ocr_timing(routed), attempts=0,
            route=routed.route, route_reason=routed.reason,
        )

    def _no_model(self, routed: Routed) -> Transcription:
        """A page that needs the vision model in a run without one (``--route text|ocr`` and no ``--model``)."""
        why = f"the page needs the vision model ({routed.reason}) and no model was given"
        return Transcription(
            status="failed", text="", finish_reason=None, model=None, parameters=self._parameters(), usage={},
            timings=_ocr_timing(routed), attempts=0, reason="no_model", error=why, route="vlm",
            route_reason=routed.reason, transient=True,
        )

    def _page_record(
        self, doc: _Document, page: RenderedPage, result: Transcription, *, cached: bool = False
    ) -> PageRecord:
        prompt_id = self.options.transcribe.prompt.id
        render = self.options.render_json()
        return page_record(doc.info, page, result, prompt_id=prompt_id, render=render, cached=cached)

    def _record(self, doc: _Document, record: PageRecord, *, from_worker: bool = False) -> PageRecord:
        """On the iterating thread: file the record, report it, write the document when it is complete."""
        if from_worker:
            doc.outstanding -= 1
        doc.records.append(record)
        self.progress.page_done(record)
        self._maybe_write(doc)
        return record

    def _maybe_write(self, doc: _Document) -> None:
        if doc.written or not doc.rendered or doc.outstanding > 0 or not doc.records:
            return
        write_document(self.out_dir, doc.info.name, doc.records)
        doc.written = True
        self.progress.document_done(doc.info.name, doc.records)

    # -- the end -------------------------------------------------------------------------------------------

    def _finish(self, elapsed_s: float) -> None:
        docs = sorted(self._docs, key=lambda d: d.order)
        self.summary = write_run(
            self.out_dir, [d.records for d in docs], self.options.chunks, elapsed_s=elapsed_s, tokenizer=self._tokenizer
        )
        self.progress.finish(self.summary)


def write_run(
    out_dir: Path,
    documents: list[list[PageRecord]],
    chunks: ChunkOptions,
    *,
    elapsed_s: float,
    tokenizer: Any | None = None,
) -> RunSummary:
    """The run's own files: ``chunks.jsonl`` over every document's records in page order (section tokens counted
    with ``tokenizer``, default the one ``chunks`` names), and ``summary.json``."""
    records = [r for d in documents for r in sorted(d, key=page_order)]
    pieces = chunk_records(records, chunks, tokenizer=tokenizer)
    atomic_write_text(out_dir / CHUNKS_FILE, "".join(json_line(c.to_json()) for c in pieces))
    summary = summarize_run(documents, elapsed_s=elapsed_s)
    atomic_write_text(out_dir / SUMMARY_FILE, json_line(summary.to_json()))
    return summary


def convert(
    paths: Sequence[str | Path],
    *,
    out_dir: str | Path,
    backend: Client | Engine | None,
    options: ConvertOptions | None = None,
    progress: ProgressSink | None = None,
    model_id: str | None = None,
) -> Iterator[PageRecord]:
    """Convert documents to per-page records, streaming each record as its page is finished.

    Writes ``NAME.jsonl`` and ``NAME.md`` per document, then ``chunks.jsonl`` and ``summary.json``, into
    ``out_dir``.
    Pages finished by an earlier run with the same prompt, parameters and model are reused, not redone.
    """
    return iter(
        Conversion(paths, out_dir=out_dir, backend=backend, options=options, progress=progress, model_id=model_id)
    )


def _error(info: DocumentInfo, exc: PagescribeError, *, page_count: int | None = None) -> PageRecord:
    reason = exc.reason if isinstance(exc, DocumentError) else type(exc).__name__
    return error_record(info, reason=reason, message=exc.message, page_count=page_count)


def _blank(parameters: dict[str, Any]) -> Transcription:
    return Transcription(
        status="blank",
        text="",
        finish_reason=None,
        model=None,
        parameters=parameters,
        usage={},
        timings={},
        attempts=0,
        route="blank",
        route_reason="no visible content",
    )


def _ocr_timing(routed: Routed) -> dict[str, float]:
    return {} if routed.ocr_ms is None else {"ocr_ms": round(routed.ocr_ms, 3)}
