"""Everything a conversion can be told, in one frozen object with sensible defaults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pagescribe.errors import InvalidRequest
from pagescribe.models.families import get_family
from pagescribe.pipeline.chunking import DEFAULT_CHUNKS, ChunkOptions
from pagescribe.pipeline.render import DEFAULT_MAX_SIDE
from pagescribe.pipeline.route import ANCHOR_MODES, ROUTE_MODES, AnchorMode, RouteMode, RouteOptions
from pagescribe.pipeline.transcribe import DEFAULT_PARAMS, TranscribeOptions
from pagescribe.prompts import Prompt, load_prompt
from pagescribe.types import SamplingParams


@dataclass(frozen=True)
class ConvertOptions:
    """Options of a ``convert`` run.

    ``prompt`` defaults to the packaged ``document`` prompt; ``params`` to greedy decoding with a fixed seed
    (``retry_params`` to a warmer, penalised variant). ``family`` (a model family's name) lays out each request
    as that family expects, post-processes its answers, and makes its document prompt and sampling the defaults.
    ``dpi`` and ``max_side`` exclude each other (default:
    longest side ``DEFAULT_MAX_SIDE`` px). ``pages`` selects 1-based pages of every document. ``concurrency``
    defaults to the backend's hint. ``force`` redoes pages already in the resume cache. ``skip_blank`` records
    pages without visible content as ``blank`` without asking the model. ``route`` picks each page's way
    (``auto``: text layer, OCR or the model, whichever keeps the page's meaning cheapest; ``vlm``, ``text``,
    ``ocr``: that way for every page); ``ocr_lang`` names Tesseract's languages (``eng+deu``); ``anchor`` what the
    model is shown beside the image (default: ``auto`` — the text layer, else the OCR text — when routing
    ``auto``, else ``none``).
    """

    prompt: Prompt | None = None
    params: SamplingParams = DEFAULT_PARAMS
    retry_params: SamplingParams | None = None
    route: RouteMode = "auto"
    ocr_lang: str = "eng"
    anchor: AnchorMode | None = None
    anchor_max_chars: int = 3000
    time_limit_s: float | None = None
    dpi: float | None = None
    max_side: int | None = None
    pages: Sequence[int] | None = None
    concurrency: int | None = None
    force: bool = False
    skip_blank: bool = True
    chunks: ChunkOptions = DEFAULT_CHUNKS
    cache_dir: Path | None = None
    family: str | None = None
    transcribe: TranscribeOptions = field(init=False, repr=False)
    routing: RouteOptions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.dpi is not None and self.max_side is not None:
            raise InvalidRequest("give either a DPI or a maximum side, not both", param="dpi")
        if (self.dpi is not None and self.dpi <= 0) or (self.max_side is not None and self.max_side < 1):
            raise InvalidRequest("DPI and maximum side must be positive", param="dpi")
        if self.concurrency is not None and self.concurrency < 1:
            raise InvalidRequest("concurrency must be at least 1", param="concurrency")
        if self.route not in ROUTE_MODES:
            raise InvalidRequest(f"unknown route {self.route!r}: use one of {', '.join(ROUTE_MODES)}", param="route")
        if self.anchor is None:
            object.__setattr__(self, "anchor", "auto" if self.route == "auto" else "none")
        if self.anchor not in ANCHOR_MODES:
            modes = ", ".join(ANCHOR_MODES)
            raise InvalidRequest(f"unknown anchor mode {self.anchor!r}: use one of {modes}", param="anchor")
        if not self.ocr_lang or not all(code.isidentifier() for code in self.ocr_lang.split("+")):
            raise InvalidRequest(f"bad OCR languages {self.ocr_lang!r}: use Tesseract codes, e.g. eng+deu",
                                 param="ocr_lang")
        family = get_family(self.family) if self.family else None
        prompt = self.prompt or (family.document_prompt() if family else load_prompt())
        object.__setattr__(self, "prompt", prompt)
        if family is not None and self.params is DEFAULT_PARAMS:
            object.__setattr__(self, "params", family.sampling())
        if self.pages is not None:
            object.__setattr__(self, "pages", tuple(sorted(set(self.pages))))
        transcribe = TranscribeOptions(
            prompt=prompt,
            params=self.params,
            retry_params=self.retry_params,
            anchor=self.anchor or "none",
            anchor_max_chars=self.anchor_max_chars,
            time_limit_s=self.time_limit_s,
            image_first=family.image_first if family else False,
            postprocess=family.postprocess if family else "none",
        )
        object.__setattr__(self, "transcribe", transcribe)
        routing = RouteOptions(mode=self.route, ocr_lang=self.ocr_lang, anchor=self.anchor or "none")
        object.__setattr__(self, "routing", routing)

    def render_json(self) -> dict[str, Any]:
        """How pages were rendered, as recorded in each page's ``parameters``."""
        max_side = self.max_side if self.max_side is not None or self.dpi is not None else DEFAULT_MAX_SIDE
        return {"dpi": self.dpi, "max_side": max_side}
