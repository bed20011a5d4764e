"""A LangChain document loader: ``PagescribeLoader(paths, url=...).lazy_load()`` -> one ``Document`` per page or
per chunk (``pip install 'pagescribe[langchain]'``).

    from pagescribe.integrations.langchain import PagescribeLoader

    docs = PagescribeLoader("report.pdf", url="http://127.0.0.1:8080", mode="chunk").load()

The backend is chosen as ``convert`` chooses it: ``client=`` (a ``Client`` or an ``Engine``), ``url=``, ``endpoint=``
(``region=``), else the model in this process (``model=``). Metadata: source, document, page, route, model (and for
chunks the pages, spans and heading path).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from pagescribe.client import Client
from pagescribe.engine.base import Engine
from pagescribe.integrations.common import Backend, DocumentSource, Mode, PathLike, as_paths, with_chunks
from pagescribe.pipeline.chunking import ChunkOptions
from pagescribe.pipeline.options import ConvertOptions


class PagescribeLoader(BaseLoader):
    """Documents' pages (or chunks) as LangChain ``Document``s, converted by a vision model as they are read."""

    def __init__(
        self,
        file_path: PathLike | Sequence[PathLike],
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
        self.paths = as_paths(file_path)
        backend = Backend(client=client, url=url, endpoint=endpoint, region=region, model=model, settings=settings)
        self.source = DocumentSource(backend, mode=mode, options=with_chunks(options, chunks), out_dir=out_dir)

    def lazy_load(self) -> Iterator[Document]:
        for text, metadata in self.source.items(self.paths):
            yield Document(page_content=text, metadata=metadata)
