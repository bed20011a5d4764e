"""The records a conversion produces: one per page (or per document that could not be opened), as JSON lines.

A ``Transcription`` is what the model made of a page image; it is what the resume cache stores, so the
same image with the same prompt, parameters and model is never sent twice. A ``PageRecord`` adds where the
page came from. ``status`` is ``ok``, ``failed`` (the output failed the check twice, or the backend failed),
``blank`` (no visible content, the model was not asked) or ``error`` (the document could not be opened; then
``page`` is None). A page is ``ok`` only when its answer ended by itself or at ``max_tokens`` (``finish_reason``
``stop`` or ``length``): one a time limit still cut after its continuations is ``failed`` (reason ``time_limit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal

PageStatus = Literal["ok", "failed", "blank", "error"]


@dataclass(frozen=True, slots=True)
class Transcription:
    """The model's answer for one page image, after the check and any retry."""

    status: PageStatus
    text: str
    finish_reason: str | None
    model: str | None
    parameters: Mapping[str, Any]
    usage: Mapping[str, int]
    timings: Mapping[str, float]
    attempts: int
    reason: str | None = None
    error: str | None = None
    continuations: int = 0
    raw_text: str | None = None  # the model's answer when the text was made from it (DocTags made Markdown)
    #: The geometric mean of the answer's token probabilities, when the parameters asked for logprobs.
    confidence: float | None = None
    #: The way the page went (``blank``, ``text``, ``ocr`` or ``vlm``) and why (the router's words).
    route: str | None = None
    route_reason: str | None = None
    # A backend failure (network, overload) may pass: such a result is never cached, so a rerun tries again.
    transient: bool = False

    def to_json(self) -> dict[str, Any]:
        """The cacheable fields as a JSON-ready dict."""
        data = asdict(self)
        del data["transient"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transcription:
        """Inverse of ``to_json``; raises ``KeyError``/``TypeError`` on a malformed entry (fields added since an
        entry was written keep their defaults)."""
        required = {f.name for f in fields(cls) if f.default is MISSING}
        optional = {f.name for f in fields(cls) if f.default is not MISSING} - {"transient"}
        return cls(**{name: data[name] for name in required}, **{n: data[n] for n in optional if n in data})


@dataclass(frozen=True, slots=True)
class PageRecord:
    """One line of ``NAME.jsonl``: a page's text with its provenance, or a document's error."""

    source: str
    source_sha256: str | None
    document: str
    page: int | None
    page_count: int | None
    status: PageStatus
    text: str = ""
    finish_reason: str | None = None
    reason: str | None = None
    error: str | None = None
    fallback_text: str | None = None
    model: str | None = None
    prompt_id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    usage: Mapping[str, int] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    image: Mapping[str, Any] | None = None
    attempts: int = 0
    continuations: int = 0
    raw_text: str | None = None
    confidence: float | None = None
    route: str | None = None
    route_reason: str | None = None
    # Reused from an earlier run's cache: kept out of the JSON, so a resumed run writes the same records.
    cached: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        """True for pages whose text can be used (``ok`` and ``blank``)."""
        return self.status in ("ok", "blank")

    def to_json(self) -> dict[str, Any]:
        """The record as written to ``NAME.jsonl``."""
        data = asdict(self)
        del data["cached"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PageRecord:
        """Read a record back from a ``NAME.jsonl`` line (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)} - {"cached"}
        return cls(**{k: v for k, v in data.items() if k in names})
