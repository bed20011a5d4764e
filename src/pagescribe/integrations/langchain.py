"""A LangChain document loader: ``PagescribeLoader(paths, url=...).lazy_load()`` -> one ``Document`` per page or
per chunk (``pip install 'pagescribe[langchain]'``).

    from pagescribe.integrations.langchain import PagescribeLoader

    docs = PagescribeLoader("report.pdf", url="http://127.0.0.1:8080", mode="chunk").load()

The backend is chosen as ``convert`` chooses it: ``client=`` (a ``Client`` or an ``Engine``), ``url=``, ``endpoint=``
(``region=``), else the model in this process (``model=``); ``options=`` (a ``ConvertOptions``), ``chunks=``
(a ``ChunkOptions``) and ``out_dir=`` as for ``pagescribe.convert``. Metadata: source, document, page, route, model
(and for chunks the pages, spans and heading path).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Unpack

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from pagescribe.integrations.common import LoaderArgs, PathLike, as_paths, make_source


class PagescribeLoader(BaseLoader):
    """Documents' pages (or chunks) as LangChain ``Document``s, converted by a vision model as they are read."""

    def __init__(self, file_path: PathLike | Sequence[PathLike], **args: Unpack[LoaderArgs]) -> None:
        self.paths = as_paths(file_path)
        self.source = make_source(**args)

    def lazy_load(self) -> Iterator[Document]:
        for text, metadata in self.source.items(self.paths):
            yield Document(page_content=text, metadata=metadata)
