"""The document pipeline: PDFs, slides and images in; per-page JSONL, Markdown and chunks out.

Stages are pure functions over frozen dataclasses, run by ``runner``::

    sources.discover -> render.render_document -> transcribe.transcribe -> assemble -> writers
                                    (cache.PageCache skips pages finished before)

``convert(paths, out_dir=..., backend=...)`` streams the page records; ``Conversion`` also gives the summary.
The backend is a ``pagescribe.client.Client`` (the model in process, a server or an endpoint: the pipeline talks
to all of them the same way), or an ``Engine`` to use in process.
"""

from pagescribe.pipeline.chunking import Chunk, ChunkOptions
from pagescribe.pipeline.errors import (
    ConverterUnavailable,
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    EncryptedDocument,
    TooLargeDocument,
    UnsupportedDocument,
)
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.records import PageRecord, Transcription
from pagescribe.pipeline.render import DEFAULT_MAX_SIDE, RenderedPage, parse_page_ranges, render_document
from pagescribe.pipeline.runner import Conversion, convert
from pagescribe.pipeline.summary import RunSummary
from pagescribe.pipeline.transcribe import DEFAULT_PARAMS

__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_PARAMS",
    "Chunk",
    "ChunkOptions",
    "Conversion",
    "ConvertOptions",
    "ConverterUnavailable",
    "CorruptDocument",
    "DocumentError",
    "EmptyDocument",
    "EncryptedDocument",
    "PageRecord",
    "RenderedPage",
    "RunSummary",
    "TooLargeDocument",
    "Transcription",
    "UnsupportedDocument",
    "convert",
    "parse_page_ranges",
    "render_document",
]
