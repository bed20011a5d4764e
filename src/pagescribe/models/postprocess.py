"""A model's answer to a page's text: DocTags (granite-docling) become Markdown with docling-core; other answers
are the text already.

DocTags are the markup granite-docling writes (``<doctag>``, ``<otsl>`` tables, ``<loc_N>`` boxes, ...): special
tokens, which the engine keeps in the answer for such a family. The raw answer stays in the page record.
"""

from __future__ import annotations

import logging
from typing import Literal

log = logging.getLogger("pagescribe.models")

PostProcess = Literal["none", "doctags"]
DOCTAG_START = "<doctag>"


def is_doctags(text: str) -> bool:
    """Whether an answer is DocTags (it opens with ``<doctag>``), whichever model or server wrote it."""
    return text.lstrip().startswith(DOCTAG_START)


def doctags_to_markdown(doctags: str, *, name: str = "page") -> str:
    """One page of DocTags as Markdown (headings, paragraphs, lists, tables, code, formulas), via docling-core."""
    from docling_core.types.doc.doctags import DocTagsDocument
    from docling_core.types.doc.document import DoclingDocument

    pages = DocTagsDocument.from_doctags_and_image_pairs([doctags], None)
    return str(DoclingDocument.load_from_doctags(pages, document_name=name).export_to_markdown())


def page_text(answer: str, kind: PostProcess = "none") -> str:
    """The page's text from the model's ``answer``: converted when the family writes DocTags (or the answer is
    DocTags anyway, from a server of such a model); as it is otherwise, or when docling-core cannot read it (or
    finds nothing in it: an answer is never lost to the conversion)."""
    if kind != "doctags" and not is_doctags(answer):
        return answer
    try:
        markdown = doctags_to_markdown(answer)
    except Exception as exc:  # docling-core raises what its parser meets; the raw answer is still the text
        log.warning("the answer is not DocTags docling-core can read (%s); kept as it is", exc)
        return answer
    return markdown if markdown.strip() or not answer.strip() else answer
