"""A LlamaIndex reader: ``PagescribeReader(url=...).load_data("report.pdf")`` -> one ``Document`` per page or
per chunk (``pip install 'pagescribe[llamaindex]'``); the backend and metadata as for the LangChain loader.

    from pagescribe.integrations.llamaindex import PagescribeReader

    documents = PagescribeReader(endpoint="my-endpoint").load_data(["a.pdf", "b.pptx"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document

from pagescribe.client import Client
from pagescribe.engine.base import Engine
from pagescribe.integrations.common import Backend, DocumentSource, Mode, PathLike, as_paths, with_chunks
from pagescribe.pipeline.chunking import ChunkOptions
from pagescribe.pipeline.options import ConvertOptions


class PagescribeReader(BaseReader):
    """Documents' pages (or chunks) as LlamaIndex ``Document``s, converted by a vision model as they are read."""

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
        super().__init__()
        backend = Backend(client=client, url=url, endpoint=endpoint, region=region, model=model, settings=settings)
        self._source = DocumentSource(backend, mode=mode, options=with_chunks(options, chunks), out_dir=out_dir)

    def lazy_load_data(
        self, file_path: PathLike | Sequence[PathLike], extra_info: dict[str, Any] | None = None
    ) -> Iterable[Document]:
        for text, metadata in self._source.items(as_paths(file_path)):
            yield Document(text=text, metadata={**metadata, **(extra_info or {})})

    def load_data(
        self, file_path: PathLike | Sequence[PathLike], extra_info: dict[str, Any] | None = None
    ) -> list[Document]:
        return list(self.lazy_load_data(file_path, extra_info))
