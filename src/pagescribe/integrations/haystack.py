"""A Haystack converter component: ``PagescribeConverter(url=...)`` in a pipeline, ``run(sources=[...])`` ->
``{"documents": [...]}``, one ``Document`` per page or per chunk (``pip install 'pagescribe[haystack]'``); the
backend and metadata as for the LangChain loader.

    from pagescribe.integrations.haystack import PagescribeConverter

    documents = PagescribeConverter(url="http://127.0.0.1:8080").run(sources=["report.pdf"])["documents"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Unpack

from haystack import Document, component

from pagescribe.integrations.common import LoaderArgs, make_source


@component
class PagescribeConverter:
    """Files (paths) to Haystack ``Document``s, a page or a chunk each, converted by a vision model."""

    def __init__(self, **args: Unpack[LoaderArgs]) -> None:
        self._source = make_source(**args)

    @component.output_types(documents=list[Document])
    def run(self, sources: list[str | Path], meta: dict[str, Any] | None = None) -> dict[str, list[Document]]:
        """Convert ``sources``; ``meta`` is added to every document's metadata."""
        documents = [
            Document(content=text, meta={**metadata, **(meta or {})}) for text, metadata in self._source.items(sources)
        ]
        return {"documents": documents}
