"""Put a document back together: page records from transcriptions, and the Markdown a person reads.

Pure functions: what goes in decides what comes out, so a resumed run writes the files an unbroken one would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pagescribe.pipeline.records import PageRecord, Transcription
from pagescribe.pipeline.render import RenderedPage


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """What every record of one document shares."""

    source: str
    source_sha256: str | None
    name: str


def page_record(
    doc: DocumentInfo,
    page: RenderedPage,
    transcription: Transcription,
    *,
    prompt_id: str,
    render: Mapping[str, Any],
    cached: bool = False,
) -> PageRecord:
    """The record of a transcribed (or blank) page; a failed one keeps its text layer as ``fallback_text``."""
    timings = {"render_ms": round(page.render_ms, 3), **transcription.timings}
    return PageRecord(
        source=doc.source,
        source_sha256=doc.source_sha256,
        document=doc.name,
        page=page.page,
        page_count=page.page_count,
        status=transcription.status,
        text=transcription.text,
        finish_reason=transcription.finish_reason,
        reason=transcription.reason,
        error=transcription.error,
        fallback_text=page.text_layer if transcription.status == "failed" else None,
        model=transcription.model,
        prompt_id=prompt_id,
        parameters={**transcription.parameters, "render": dict(render)},
        usage=transcription.usage,
        timings=timings,
        image={"width": page.image.width, "height": page.image.height, "sha256": page.image.sha256},
        attempts=transcription.attempts,
        continuations=transcription.continuations,
        raw_text=transcription.raw_text,
        confidence=transcription.confidence,
        route=transcription.route,
        route_reason=transcription.route_reason,
        cached=cached,
    )


def error_record(doc: DocumentInfo, *, reason: str, message: str, page_count: int | None = None) -> PageRecord:
    """The one record of a document that could not be opened or rendered."""
    return PageRecord(
        source=doc.source,
        source_sha256=doc.source_sha256,
        document=doc.name,
        page=None,
        page_count=page_count,
        status="error",
        reason=reason,
        error=message,
    )


def document_markdown(name: str, records: Iterable[PageRecord]) -> str:
    """The document as Markdown: a title, then each page under ``## Page N`` in page order."""
    pages = sorted((r for r in records if r.page is not None), key=lambda r: r.page or 0)
    parts = [f"# {name}\n"]
    for record in pages:
        parts.append(f"## Page {record.page}\n\n{_page_body(record)}\n")
    return "\n".join(parts)


def _page_body(record: PageRecord) -> str:
    if record.status == "ok":
        return record.text or "_(no text)_"
    if record.status == "blank":
        return "_(blank page)_"
    note = f"_(transcription failed: {record.error or record.reason})_"
    if record.fallback_text:
        return f"{note}\n\nText layer of the page:\n\n{record.fallback_text}"
    return note
