"""The page router: each page goes the cheapest way that keeps its meaning, and the record says which and why.

Routes, cheapest first:

- ``blank``: nothing visible on the page (decided by the runner from the pixels); no model call.
- ``text``: a born-digital page whose content is text alone: its text layer, in reading order, as Markdown.
- ``ocr``: a page without a usable text layer (a scan, a photo, an image-only PDF) whose content is text alone,
  read by Tesseract.
- ``vlm``: everything else — images, charts, diagrams, tables drawn as graphics, any page the router is not
  sure of — goes to the vision model, with the text layer or the OCR text as its anchor.

``--route auto`` decides per page with the ``Thresholds`` below; ``text``, ``ocr`` and ``vlm`` force a route
(a page the forced route cannot serve falls back to the next one, and says so). Every threshold errs toward the
model: a page is kept from it only when every measure says "text only".
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np
from PIL import Image

from pagescribe.images import to_pil
from pagescribe.pipeline.ocr import OcrError, OcrResult, check_languages, recognize, tesseract_available
from pagescribe.pipeline.render import RenderedPage
from pagescribe.pipeline.textlayer import PageLayout, layer_problem

log = logging.getLogger(__name__)

Route = Literal["blank", "text", "ocr", "vlm"]
RouteMode = Literal["auto", "vlm", "text", "ocr"]
AnchorMode = Literal["auto", "none", "text-layer", "ocr"]
ROUTE_MODES: tuple[str, ...] = get_args(RouteMode)
ANCHOR_MODES: tuple[str, ...] = get_args(AnchorMode)
#: Bump when a change here can change a page's route or routed text (it is part of the resume cache key).
ROUTER_VERSION = 2


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a page is more than text. Areas are fractions of the page.

    ``image_area``: image objects covering this much of a PDF page make it a figure or photo page (a logo or an
    icon is smaller). ``drawing_area``: vector shapes (not thin rules) covering this much make it a chart or
    diagram page. ``max_rules``: more thin lines than this are a ruled table or a line drawing (a header rule, an
    underline or a footnote rule are fewer). ``ink_outside_text_pdf`` and ``ink_outside_text_scan``: the share
    of the page drawn away from any text once straight rules are taken out (``ink_outside``), on PDF pages (a
    safety net for what the object walk misses) and on OCR'd pages (where pictures show up only this way).
    ``ocr_confidence``: Tesseract's mean word confidence (0-100) below which its text is not trusted alone.
    """

    image_area: float = 0.01
    drawing_area: float = 0.02
    max_rules: int = 5
    ink_outside_text_pdf: float = 0.01
    ink_outside_text_scan: float = 0.001
    ocr_confidence: float = 75.0


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """How pages are routed: the mode, Tesseract's languages, what anchors the model, the thresholds."""

    mode: RouteMode = "auto"
    ocr_lang: str = "eng"
    anchor: AnchorMode = "auto"
    thresholds: Thresholds = DEFAULT_THRESHOLDS

    def describe(self) -> dict[str, Any]:
        """Recorded in each page's parameters and part of the resume cache key."""
        return {
            "route": self.mode,
            "ocr_lang": self.ocr_lang,
            "anchor": self.anchor,
            "router": ROUTER_VERSION,
            "thresholds": asdict(self.thresholds),
        }


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a page goes and why; ``text`` for the text and ocr routes, ``anchor`` for the model's."""

    route: Route
    reason: str
    text: str = ""
    anchor: str | None = None
    ocr_ms: float | None = None


# ---------------------------------------------------------------------------------------------- measures


@dataclass(frozen=True, slots=True)
class Ink:
    """Ink on the page away from every text box: ``figure`` is the share of the page it covers once straight
    rules are taken out; ``rules`` counts those rules (horizontal and vertical lines)."""

    figure: float
    rules: int


def ink_outside(image: Image.Image, boxes: list[tuple[float, float, float, float]]) -> Ink:
    """Measure ink outside ``boxes`` (pixels) on a grid of cells about 1/200 of the page's longest side.

    A cell is inked when 5 % of its pixels are dark. Straight runs of inked cells longer than 6 % of the page
    are rules (underlines, a footnote's rule, a table's ruling); an inked cell with no inked neighbour is a
    speck of dust or noise. What remains is drawn: curves, shapes, pictures.
    """
    grey = np.asarray(image.convert("L"), dtype=np.uint8)
    height, width = grey.shape
    cell = max(2, max(width, height) // 200)
    rows, cols = height // cell, width // cell
    if rows < 3 or cols < 3:
        return Ink(0.0, 0)
    dark = grey[: rows * cell, : cols * cell] < 128
    inked = dark.reshape(rows, cell, cols, cell).mean(axis=(1, 3)) >= 0.05
    text = np.zeros((rows, cols), dtype=bool)
    for x0, top, x1, bottom in boxes:
        pad = 0.15 * (bottom - top) + cell
        r0, r1 = int((top - pad) // cell), int((bottom + pad) // cell) + 1
        c0, c1 = int((x0 - pad) // cell), int((x1 + pad) // cell) + 1
        text[max(0, r0) : max(0, r1), max(0, c0) : max(0, c1)] = True
    outside = inked & ~text
    # a rule on a slightly rotated scan steps from one row of cells to the next: look at rows in pairs
    horizontal, h_count = _runs(outside | np.roll(outside, -1, axis=0), int(0.06 * cols))
    vertical, v_count = _runs((outside | np.roll(outside, -1, axis=1)).T, int(0.06 * rows))
    drawn = outside & ~horizontal & ~np.roll(horizontal, 1, axis=0) & ~vertical.T & ~np.roll(vertical.T, 1, axis=1)
    padded = np.pad(drawn, 1)
    neighbours = sum(
        padded[1 + dr : rows + 1 + dr, 1 + dc : cols + 1 + dc].astype(np.int8)
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
        if dr or dc
    )
    drawn &= neighbours > 0
    return Ink(float(drawn.mean()), h_count + v_count)


def _runs(grid: np.ndarray, min_length: int) -> tuple[np.ndarray, int]:
    """Cells in runs of at least ``min_length`` along each row, and how many such runs start a new line (a run
    directly under one in the row above is the same, thick, line)."""
    marked = np.zeros_like(grid)
    count = 0
    previous: list[tuple[int, int]] = []
    for r in range(grid.shape[0]):
        row = np.concatenate(([0], grid[r].astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(row))
        spans = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= max(2, min_length)]
        for a, b in spans:
            marked[r, a:b] = True
            if not any(a < pb and pa < b for pa, pb in previous):
                count += 1
        previous = spans
    return marked, count


def pdf_decision(page: RenderedPage, layout: PageLayout, limits: Thresholds = DEFAULT_THRESHOLDS) -> Routed:
    """``text`` or ``vlm`` for a born-digital page whose text layer is usable."""
    if layout.image_area >= limits.image_area:
        return Routed("vlm", f"image objects cover {layout.image_area:.0%} of the page ({layout.images} images)")
    if layout.drawing_area >= limits.drawing_area:
        return Routed("vlm", f"vector drawing covers {layout.drawing_area:.0%} of the page ({layout.paths} paths)")
    if layout.rules > limits.max_rules:
        return Routed("vlm", f"{layout.rules} ruled lines (a table or a drawing)")
    scale = page.image.width / layout.width
    boxes = [(x0 * scale, t * scale, x1 * scale, b * scale) for x0, t, x1, b in layout.text_boxes]
    ink = ink_outside(to_pil(page.image), boxes)
    if ink.figure >= limits.ink_outside_text_pdf:
        return Routed("vlm", f"a drawing away from the text covers {ink.figure:.1%} of the page")
    return Routed("text", f"born-digital text ({layout.chars} characters; no images, drawings or ruled tables)")


def ocr_decision(ocr: OcrResult, image: Image.Image, limits: Thresholds = DEFAULT_THRESHOLDS) -> Routed:
    """``ocr`` or ``vlm`` for a page Tesseract has read."""
    if ocr.words == 0:
        return Routed("vlm", "OCR found no text", ocr_ms=ocr.elapsed_ms)
    boxes = [(float(x0), float(top), float(x1), float(bottom)) for x0, top, x1, bottom in ocr.word_boxes]
    ink = ink_outside(image, boxes)
    if ink.figure >= limits.ink_outside_text_scan:
        reason = f"a drawing away from the text covers {ink.figure:.1%} of the page (a picture, chart or diagram)"
        return Routed("vlm", reason, anchor=ocr.text, ocr_ms=ocr.elapsed_ms)
    if ink.rules > limits.max_rules:
        reason = f"{ink.rules} ruled lines (a table or a drawing)"
        return Routed("vlm", reason, anchor=ocr.text, ocr_ms=ocr.elapsed_ms)
    if ocr.confidence < limits.ocr_confidence:
        reason = f"OCR confidence {ocr.confidence:.0f} is below {limits.ocr_confidence:.0f}"
        return Routed("vlm", reason, anchor=ocr.text, ocr_ms=ocr.elapsed_ms)
    reason = f"scanned text ({ocr.words} words, OCR confidence {ocr.confidence:.0f}; no pictures)"
    return Routed("ocr", reason, text=ocr.text, ocr_ms=ocr.elapsed_ms)


# ---------------------------------------------------------------------------------------------- the router


class Router:
    """Routes pages under one ``RouteOptions``; safe to share between worker threads.

    Raises ``OcrUnavailable`` at once when the mode needs Tesseract (``ocr``) or a language asked for is missing;
    in ``auto`` a missing Tesseract is said once and its pages go to the model.
    """

    def __init__(self, options: RouteOptions) -> None:
        self.options = options
        self.ocr_ready = tesseract_available()
        needs_ocr = options.mode == "ocr" or options.anchor == "ocr"
        if self.ocr_ready or needs_ocr:
            check_languages(options.ocr_lang)
        elif options.mode in ("auto", "text"):
            log.warning("Tesseract is not installed: pages without a text layer go to the vision model "
                        "(apt-get install tesseract-ocr tesseract-ocr-eng to read scans with OCR)")

    @property
    def ocr_wanted(self) -> Literal["never", "needed", "always"]:
        """Which pages the renderer should also render for OCR."""
        if not self.ocr_ready:
            return "never"
        if self.options.mode == "ocr" or self.options.anchor == "ocr":
            return "always"
        return "needed" if self.options.mode != "vlm" or self.options.anchor == "auto" else "never"

    def route(self, page: RenderedPage) -> Routed:
        """Where the page goes (runs Tesseract when the decision needs it)."""
        mode = self.options.mode
        unusable = layer_problem(page.layout)
        if mode == "vlm":
            return self._model(page, "asked for the vision model (--route vlm)")
        if mode == "ocr":
            return self._ocr(page, "asked for OCR (--route ocr)", force=True)
        if unusable is None and page.layout is not None:
            if mode == "text":
                return Routed("text", "asked for the text layer (--route text)", text=page.layout.markdown)
            decided = pdf_decision(page, page.layout, self.options.thresholds)
            if decided.route == "vlm":
                return self._model(page, decided.reason)
            return Routed("text", decided.reason, text=page.layout.markdown)
        if not self.ocr_ready:
            return self._model(page, f"{unusable or 'no text layer'} and no OCR engine")
        return self._ocr(page, unusable or "no text layer", force=mode == "text")

    def _ocr(self, page: RenderedPage, why: str, *, force: bool) -> Routed:
        image = page.scan or to_pil(page.image)
        try:
            ocr = recognize(image, lang=self.options.ocr_lang)
        except OcrError as exc:
            return self._model(page, f"{why}; OCR failed ({exc.message})", ocr_failed=True)
        if force and ocr.words:
            return Routed("ocr", why, text=ocr.text, ocr_ms=ocr.elapsed_ms)
        if not ocr.words and page.layout is not None and layer_problem(page.layout) is None:
            # a near-blank page (a page number, a caption) Tesseract finds nothing on: its text layer says it all
            reason = f"{why}; OCR found no text; the text layer"
            return Routed("text", reason, text=page.layout.markdown, ocr_ms=ocr.elapsed_ms)
        decided = ocr_decision(ocr, image, self.options.thresholds)
        if decided.route == "ocr":
            return Routed("ocr", f"{why}; {decided.reason}", text=decided.text, ocr_ms=decided.ocr_ms)
        return self._model(page, f"{why}; {decided.reason}", ocr=ocr)

    def _model(
        self, page: RenderedPage, why: str, *, ocr: OcrResult | None = None, ocr_failed: bool = False
    ) -> Routed:
        """The vision model, with the anchor the options ask for: the text layer (``text-layer``; ``auto`` when
        it is usable), else the OCR text (``ocr``, ``auto``), read now unless the router already has it."""
        mode = self.options.anchor
        usable = layer_problem(page.layout) is None or (page.layout is None and page.text_layer is not None)
        if mode == "none":
            return Routed("vlm", why)
        if mode == "text-layer" or (mode == "auto" and usable and page.text_layer):
            return Routed("vlm", why, anchor=page.text_layer)
        if ocr is None and self.ocr_ready and not ocr_failed:
            try:
                ocr = recognize(page.scan or to_pil(page.image), lang=self.options.ocr_lang)
            except OcrError as exc:
                return Routed("vlm", f"{why}; no OCR anchor ({exc.message})")
        if ocr is None:
            return Routed("vlm", why)
        return Routed("vlm", why, anchor=ocr.text or None, ocr_ms=ocr.elapsed_ms)
