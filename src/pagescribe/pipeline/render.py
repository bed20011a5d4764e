"""Documents to page images: PDFs with pypdfium2, images (multi-page TIFF too) with Pillow, Office via PDF.

``render_document`` is the one entry point, used by ``convert`` and ``describe``. By default a page is
rendered so that its longest side is ``DEFAULT_MAX_SIDE`` pixels, about what a LLaVA-style encoder looks at;
``dpi`` renders at a fixed resolution instead. PDFium is not thread-safe (even across documents), so every
call into it holds one process-wide lock.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from pagescribe.errors import ImageError, ImageTooLarge, InvalidRequest
from pagescribe.images import (
    SUPPORTED_FORMATS,
    ImageLimits,
    decode_image,
    fit_image,
    image_from_pil,
    iter_image_pages,
    to_pil,
)
from pagescribe.pipeline.errors import (
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    EncryptedDocument,
    TooLargeDocument,
    UnsupportedDocument,
)
from pagescribe.pipeline.office import office_to_pdf
from pagescribe.pipeline.sources import DocumentKind, sniff
from pagescribe.pipeline.textlayer import PageLayout, layer_problem, read_layout
from pagescribe.types import ImageInput

DEFAULT_MAX_SIDE = 1344
# A poster rendered at a high DPI can ask for gigapixels; no page image is ever larger than this.
MAX_RENDER_SIDE = 10_000
IMAGE_FILE_LIMITS = ImageLimits(max_bytes=512 * 1024 * 1024, max_pixels=100_000_000, max_side=None)
#: Pages read by OCR are rendered at this resolution (Tesseract reads 300 DPI best), images kept up to this side.
OCR_DPI = 300.0
OCR_MAX_SIDE = 5000

#: Which pages also get a greyscale rendering for OCR: none, those without a usable text layer, or all.
OcrRender = Literal["never", "needed", "always"]

_PDFIUM_LOCK = threading.RLock()


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One page ready for the model: its pixels, the PDF's own text for it (if any) and where it came from."""

    source: Path
    page: int
    page_count: int
    image: ImageInput
    text_layer: str | None
    render_ms: float = 0.0
    #: What is drawn on a PDF page and its text as Markdown (when asked for, with ``analyze``).
    layout: PageLayout | None = None
    #: The page in greyscale at OCR resolution (when asked for, with ``ocr``).
    scan: Image.Image | None = None


def parse_page_ranges(spec: str) -> tuple[int, ...]:
    """``"1-5,9"`` -> ``(1, 2, 3, 4, 5, 9)``: 1-based page numbers, sorted, without repeats."""
    pages: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        first, dash, last = part.partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise InvalidRequest(f"bad page range {part!r} in {spec!r}: use e.g. 1-5,9", param="pages") from None
        if low < 1 or high < low:
            raise InvalidRequest(f"bad page range {part!r}: pages count from 1, low to high", param="pages")
        pages.update(range(low, high + 1))
    return tuple(sorted(pages))


def render_document(
    path: Path,
    *,
    dpi: float | None = None,
    max_side: int | None = None,
    pages: Sequence[int] | None = None,
    kind: DocumentKind | None = None,
    analyze: bool = False,
    ocr: OcrRender = "never",
) -> Iterator[RenderedPage]:
    """Render the pages of a PDF, image or Office file, lazily, in page order.

    ``pages`` selects 1-based page numbers (those past the end are skipped; none left is an error).
    ``dpi`` applies to PDFs; images keep their pixels, shrunk to ``max_side`` (default ``DEFAULT_MAX_SIDE``).
    ``analyze`` measures each PDF page and rebuilds its text layer as Markdown (``RenderedPage.layout``);
    ``ocr`` adds a greyscale rendering at OCR resolution (``RenderedPage.scan``) to the pages it names.
    Raises a ``DocumentError`` naming the file for empty, encrypted, corrupt or unsupported documents.
    """
    path = Path(path)
    kind = kind or _sniff(path)
    how = _How(dpi=dpi, max_side=max_side, analyze=analyze or ocr == "needed", ocr=ocr)
    if kind == "office":
        yield from _render_office(path, how, pages=pages)
    elif kind == "pdf":
        yield from _render_pdf(path, how, pages=pages)
    elif kind == "image":
        yield from _render_image(path, max_side=max_side or DEFAULT_MAX_SIDE, pages=pages, ocr=ocr != "never")
    else:
        raise UnsupportedDocument(f"{path}: not a PDF, an image or an Office document")


@dataclass(frozen=True, slots=True)
class _How:
    dpi: float | None
    max_side: int | None
    analyze: bool
    ocr: OcrRender


def count_pages(path: Path, *, kind: DocumentKind | None = None) -> int:
    """The number of pages of a PDF, image or Office file (an Office file is converted to count them)."""
    kind = kind or _sniff(path)
    if kind == "office":
        _check_size(path)
        with tempfile.TemporaryDirectory(prefix="pagescribe-office-") as work:
            return count_pages(office_to_pdf(path, work_dir=Path(work)), kind="pdf")
    if kind == "pdf":
        with _PDFIUM_LOCK:
            doc = _open_pdf(path)
            try:
                return len(doc)
            finally:
                doc.close()
    if kind == "image":
        return _count_frames(path)
    raise UnsupportedDocument(f"{path}: not a PDF, an image or an Office document")


def _sniff(path: Path) -> DocumentKind | None:
    try:
        return sniff(path)
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc


def _select(page_count: int, pages: Sequence[int] | None, path: Path) -> list[int]:
    if pages is None:
        return list(range(1, page_count + 1))
    chosen = sorted({p for p in pages if 1 <= p <= page_count})
    if not chosen:
        raise InvalidRequest(
            f"{path}: none of the requested pages exist (the document has {page_count})", param="pages"
        )
    return chosen


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    if size == 0:
        raise EmptyDocument(f"{path}: the file is empty (0 bytes)")


# ---------------------------------------------------------------------------------------------- PDF


def _open_pdf(path: Path) -> pdfium.PdfDocument:
    """Open under the caller's lock; PDFium's load error codes become DocumentErrors."""
    _check_size(path)
    try:
        doc = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        code = exc.err_code
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise EncryptedDocument(f"{path}: the PDF is encrypted and needs a password") from exc
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise EncryptedDocument(f"{path}: the PDF uses an unsupported security handler") from exc
        raise CorruptDocument(f"{path}: not a readable PDF ({exc})") from exc
    if len(doc) == 0:
        doc.close()
        raise EmptyDocument(f"{path}: the PDF has no pages")
    return doc


def _render_pdf(path: Path, how: _How, *, pages: Sequence[int] | None) -> Iterator[RenderedPage]:
    with _PDFIUM_LOCK:
        doc = _open_pdf(path)
    try:
        count = len(doc)
        for number in _select(count, pages, path):
            with _PDFIUM_LOCK:
                rendered = _render_pdf_page(doc, number, count, path=path, how=how)
            yield rendered
    finally:
        with _PDFIUM_LOCK:
            doc.close()


def _render_pdf_page(doc: pdfium.PdfDocument, number: int, count: int, *, path: Path, how: _How) -> RenderedPage:
    started = time.perf_counter()
    scan = layout = None
    try:
        page = doc[number - 1]
        try:
            width, height = page.get_size()
            scale = _scale(width, height, dpi=how.dpi, max_side=how.max_side)
            pil = page.render(scale=scale, may_draw_forms=True).to_pil()
            textpage = page.get_textpage()
            try:
                text = _text_layer(textpage)
                if how.analyze:
                    layout = read_layout(page, textpage)
            finally:
                textpage.close()
            if how.ocr == "always" or (how.ocr == "needed" and layer_problem(layout) is not None):
                ocr_scale = min(OCR_DPI / 72.0, MAX_RENDER_SIDE / max(width, height, 1.0))
                scan = page.render(scale=ocr_scale, may_draw_forms=True, grayscale=True).to_pil().convert("L")
        finally:
            page.close()
    except pdfium.PdfiumError as exc:
        raise CorruptDocument(f"{path}: page {number} cannot be rendered ({exc})") from exc
    target = None if how.dpi is not None else (how.max_side or DEFAULT_MAX_SIDE)
    image = image_from_pil(pil, max_side=target)
    elapsed = (time.perf_counter() - started) * 1000
    return RenderedPage(path, number, count, image, text, elapsed, layout=layout, scan=scan)


def _scale(width_pt: float, height_pt: float, *, dpi: float | None, max_side: int | None) -> float:
    longest_pt = max(width_pt, height_pt, 1.0)
    scale = dpi / 72.0 if dpi is not None else (max_side or DEFAULT_MAX_SIDE) / longest_pt
    return min(scale, MAX_RENDER_SIDE / longest_pt)


def text_layer(path: Path, page: int) -> str | None:
    """The text layer of one PDF page (1-based), as ``render_document`` gives it, without rendering the page."""
    with _PDFIUM_LOCK:
        doc = _open_pdf(path)
        try:
            textpage = doc[page - 1].get_textpage()
            try:
                return _text_layer(textpage)
            finally:
                textpage.close()
        finally:
            doc.close()


def _text_layer(textpage: pdfium.PdfTextPage) -> str | None:
    text = textpage.get_text_bounded()
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


# ---------------------------------------------------------------------------------------------- images


def _read_image_file(path: Path) -> bytes:
    _check_size(path)
    if path.stat().st_size > IMAGE_FILE_LIMITS.max_bytes:
        raise TooLargeDocument(f"{path}: the image file is over {IMAGE_FILE_LIMITS.max_bytes:,} bytes")
    return path.read_bytes()


def _count_frames(path: Path) -> int:
    """Pages in an image file from its headers alone (multi-page TIFF is the only multi-page format read)."""
    data = _read_image_file(path)
    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as im:
            return int(getattr(im, "n_frames", 1)) if im.format == "TIFF" else 1
    except Exception as exc:  # Pillow raises many types on bad headers; decode_image names the cause
        try:
            decode_image(data, limits=IMAGE_FILE_LIMITS, source=str(path))
        except ImageTooLarge as named:
            raise TooLargeDocument(named.message) from exc
        except ImageError as named:
            raise CorruptDocument(named.message) from exc
        raise CorruptDocument(f"{path}: not a readable image ({exc})") from exc


def _render_image(
    path: Path, *, max_side: int, pages: Sequence[int] | None, ocr: bool = False
) -> Iterator[RenderedPage]:
    """Each frame shrunk to ``max_side``; with ``ocr``, decoded up to ``OCR_MAX_SIDE`` for Tesseract as well."""
    data = _read_image_file(path)
    count = _count_frames(path)
    wanted = set(_select(count, pages, path))
    limits = ImageLimits(
        max_bytes=IMAGE_FILE_LIMITS.max_bytes,
        max_pixels=IMAGE_FILE_LIMITS.max_pixels,
        max_side=max(max_side, OCR_MAX_SIDE) if ocr else max_side,
    )
    frames = iter_image_pages(data, limits=limits, source=str(path))
    number = 0
    while True:
        started = time.perf_counter()
        try:
            image = next(frames, None)
        except ImageTooLarge as exc:
            raise TooLargeDocument(exc.message) from exc
        except ImageError as exc:
            raise CorruptDocument(exc.message) from exc
        number += 1
        if image is None or number > count:
            return
        if number in wanted:
            scan = to_pil(image).convert("L") if ocr else None
            elapsed = (time.perf_counter() - started) * 1000
            yield RenderedPage(path, number, count, fit_image(image, max_side), None, elapsed, scan=scan)


# ---------------------------------------------------------------------------------------------- Office


def _render_office(path: Path, how: _How, *, pages: Sequence[int] | None) -> Iterator[RenderedPage]:
    _check_size(path)
    with tempfile.TemporaryDirectory(prefix="pagescribe-office-") as work:
        pdf = office_to_pdf(path, work_dir=Path(work))
        for page in _render_pdf(pdf, how, pages=pages):
            yield dataclasses.replace(page, source=path)
