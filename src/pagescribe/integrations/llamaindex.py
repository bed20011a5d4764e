"""A LlamaIndex reader: ``PagescribeReader(url=...).load_data("report.pdf")`` -> one ``Document`` per page or
per chunk (``pip install 'pagescribe[llamaindex]'``); the backend and metadata as for the LangChain loader.

    from pagescribe.integrations.llamaindex import PagescribeReader

    documents = PagescribeReader(endpoint="my-endpoint").load_data(["a.pdf", "b.pptx"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Unpack

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document

from pagescribe.integrations.common import LoaderArgs, PathLike, as_paths, make_source


class PagescribeReader(BaseReader):
    """Documents' pages (or chunks) as LlamaIndex ``Document``s, converted by a vision model as they are read."""

    def __init__(self, **args: Unpack[LoaderArgs]) -> None:
        super().__init__()
        self._source = make_source(**args)

    def lazy_load_data(
        self, file_path: PathLike | Sequence[PathLike], extra_info: dict[str, Any] | None = None
    ) -> Iterable[Document]:
        for text, metadata in self._source.items(as_paths(file_path)):
            yield Document(text=text, metadata={**metadata, **(extra_info or {})})

    def load_data(
        self, file_path: PathLike | Sequence[PathLike], extra_info: dict[str, Any] | None = None
    ) -> list[Document]:
        return list(self.lazy_load_data(file_path, extra_info))
