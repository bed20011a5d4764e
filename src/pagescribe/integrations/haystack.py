"""A Haystack converter component: ``PagescribeConverter(url=...)`` in a pipeline, ``run(sources=[...])`` ->
``{"documents": [...]}``, one ``Document`` per page or per chunk (``pip install 'pagescribe[haystack]'``); the
backend and metadata as for the LangChain loader.

    from pagescribe.integrations.haystack import PagescribeConverter

    documents = PagescribeConverter(url="http://127.0.0.1:8080").run(sources=["report.pdf"])["documents"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haystack import Document, component

from pagescribe.client import Client
from pagescribe.engine.base import Engine
from pagescribe.integrations.common import Backend, DocumentSource, Mode, PathLike, with_chunks
from pagescribe.pipeline.chunking import ChunkOptions
from pagescribe.pipeline.options import ConvertOptions


@component
class PagescribeConverter:
    """Files (paths) to Haystack ``Document``s, a page or a chunk each, converted by a vision model."""

    def __init__(
        self,
        *,
        mode: Mode = "page",
        client: Client | Engine | None = None,
        url: str | None = None,
        endpoint: str | None = None,
        region: str | None = None,
        model: str | None = None,
        options: ConvertOptions | None = None,
        chunks: ChunkOptions | None = None,
        out_dir: PathLike | None = None,
        **settings: Any,
    ) -> None:
        backend = Backend(client=client, url=url, endpoint=endpoint, region=region, model=model, settings=settings)
        self._source = DocumentSource(backend, mode=mode, options=with_chunks(options, chunks), out_dir=out_dir)

    @component.output_types(documents=list[Document])
    def run(self, sources: list[str | Path], meta: dict[str, Any] | None = None) -> dict[str, list[Document]]:
        """Convert ``sources``; ``meta`` is added to every document's metadata."""
        documents = [
            Document(content=text, meta={**metadata, **(meta or {})}) for text, metadata in self._source.items(sources)
        ]
        return {"documents": documents}
