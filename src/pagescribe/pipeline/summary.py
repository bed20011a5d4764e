"""The run summary: what was converted, what failed, what was reused, how fast."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pagescribe.pipeline.records import PageRecord


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Counts for one run. ``pages_cached`` were finished by an earlier run and not redone (skipped)."""

    documents: int
    documents_failed: int
    pages_ok: int
    pages_failed: int
    pages_blank: int
    pages_cached: int
    elapsed_s: float
    #: Pages per route (blank, text, ocr, vlm): how many the model was spared.
    routes: Mapping[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return self.pages_ok + self.pages_failed + self.pages_blank

    @property
    def pages_per_minute(self) -> float:
        """Pages this run actually worked on (cached ones excluded), per minute of wall time."""
        done = self.pages - self.pages_cached
        return 60.0 * done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def succeeded(self) -> bool:
        """No page failed and every document could be opened."""
        return self.pages_failed == 0 and self.documents_failed == 0

    def to_json(self) -> dict[str, Any]:
        """The summary as written to ``summary.json`` and the JSON-lines progress stream."""
        return {
            "documents": self.documents,
            "documents_failed": self.documents_failed,
            "pages": self.pages,
            "pages_ok": self.pages_ok,
            "pages_failed": self.pages_failed,
            "pages_blank": self.pages_blank,
            "pages_skipped": self.pages_cached,
            "elapsed_s": round(self.elapsed_s, 3),
            "pages_per_minute": round(self.pages_per_minute, 2),
            "routes": dict(self.routes),
        }

    def describe(self) -> str:
        """One line for people."""
        return (
            f"{_count(self.documents, 'document')} ({self.documents_failed} failed), "
            f"{_count(self.pages, 'page')}: "
            f"{self.pages_ok} ok, {self.pages_failed} failed, {self.pages_blank} blank, "
            f"{self.pages_cached} skipped (already done); {_routes(self.routes)}{self.elapsed_s:.1f} s, "
            f"{self.pages_per_minute:.1f} pages/min"
        )


def _routes(routes: Mapping[str, int]) -> str:
    """``"routes: 12 text, 3 ocr, 5 vlm; "`` (empty when no page was routed)."""
    named = [f"{n} {route}" for route, n in routes.items() if n and route != "blank"]
    return f"routes: {', '.join(named)}; " if named else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def summarize_run(documents: Iterable[list[PageRecord]], *, elapsed_s: float) -> RunSummary:
    """Count the records of every document of a run."""
    docs = [list(d) for d in documents]
    flat = [r for d in docs for r in d]
    return RunSummary(
        documents=len(docs),
        documents_failed=sum(1 for d in docs if any(r.status in ("error", "failed") for r in d)),
        pages_ok=sum(1 for r in flat if r.status == "ok"),
        pages_failed=sum(1 for r in flat if r.status == "failed"),
        pages_blank=sum(1 for r in flat if r.status == "blank"),
        pages_cached=sum(1 for r in flat if r.cached),
        elapsed_s=elapsed_s,
        routes={route: sum(1 for r in flat if r.route == route) for route in ("blank", "text", "ocr", "vlm")},
    )
