"""Scanned text read by Tesseract (Debian ``tesseract-ocr`` and a language pack such as ``tesseract-ocr-eng``).

``recognize`` runs Tesseract's page segmentation and recognition once (through pytesseract) and keeps what the
router needs besides the text: each word's box and confidence, so text blocks can be told from pictures (ink
outside every word box) and a doubtful page from a clean one. The text keeps Tesseract's blocks as paragraphs
and its lines as lines.
"""

from __future__ import annotations

import functools
import shutil
import time
from dataclasses import dataclass

from PIL import Image

from pagescribe.errors import PagescribeError

INSTALL_HINT = "install Tesseract: apt-get install tesseract-ocr tesseract-ocr-eng (and tesseract-ocr-LANG for others)"
#: Seconds one page may take before Tesseract is stopped (a 300-DPI letter page takes ~5-10 s on one core).
TIMEOUT_S = 120.0

Box = tuple[int, int, int, int]  # left, top, right, bottom (pixels of the OCR image)


class OcrError(PagescribeError):
    """Tesseract could not read a page (it crashed, timed out, or lacks a language)."""


class OcrUnavailable(OcrError):
    """Tesseract, or a language asked for, is not installed."""


@dataclass(frozen=True, slots=True)
class OcrResult:
    """Tesseract's reading of one page image: the text, its words' boxes and mean confidence (0-100)."""

    text: str
    words: int
    confidence: float
    word_boxes: tuple[Box, ...]
    size: tuple[int, int]
    elapsed_ms: float


@functools.cache
def tesseract_available() -> bool:
    """True when the ``tesseract`` program is on PATH (checked once per process)."""
    return shutil.which("tesseract") is not None


@functools.cache
def installed_languages() -> frozenset[str]:
    """The language packs Tesseract has (``eng``, ``deu``, ...); empty when Tesseract is missing."""
    if not tesseract_available():
        return frozenset()
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractError, OSError):
        return frozenset()


def check_languages(lang: str) -> None:
    """Raise ``OcrUnavailable`` naming the packages when Tesseract or one of ``lang`` (``eng+deu``) is missing."""
    if not tesseract_available():
        raise OcrUnavailable(f"OCR needs Tesseract, which is not installed: {INSTALL_HINT}")
    missing = [code for code in lang.split("+") if code and code not in installed_languages()]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code}" for code in missing)
        raise OcrUnavailable(f"Tesseract has no language data for {'+'.join(missing)}: apt-get install {packages}")


def recognize(image: Image.Image, *, lang: str = "eng", timeout_s: float = TIMEOUT_S) -> OcrResult:
    """Read a page image (any mode; greyscale at 200-300 DPI reads best). Raises ``OcrError``."""
    import pytesseract

    started = time.perf_counter()
    try:
        data = pytesseract.image_to_data(
            image, lang=lang, config="--psm 3", output_type=pytesseract.Output.DICT, timeout=timeout_s
        )
    except pytesseract.TesseractNotFoundError as exc:
        raise OcrUnavailable(f"OCR needs Tesseract, which is not installed: {INSTALL_HINT}") from exc
    except pytesseract.TesseractError as exc:
        raise OcrError(f"Tesseract failed on the page: {exc.message.strip() or exc.status}") from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise OcrError(f"Tesseract took longer than {timeout_s:.0f} s on the page") from exc
    except OSError as exc:
        raise OcrError(f"Tesseract could not be run: {exc}") from exc
    return _result(data, image.size, (time.perf_counter() - started) * 1000)


def _result(data: dict[str, list[object]], size: tuple[int, int], elapsed_ms: float) -> OcrResult:
    """Words grouped as Tesseract found them: lines (newline) inside paragraphs (blank line)."""
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    boxes: list[Box] = []
    weighted = chars = 0.0
    for i, raw in enumerate(data["text"]):
        word = str(raw).strip()
        conf = float(str(data["conf"][i]))
        if not word or conf < 0:
            continue
        key = (int(str(data["block_num"][i])), int(str(data["par_num"][i])))
        paragraphs.setdefault(key, {}).setdefault(int(str(data["line_num"][i])), []).append(word)
        left, top = int(str(data["left"][i])), int(str(data["top"][i]))
        boxes.append((left, top, left + int(str(data["width"][i])), top + int(str(data["height"][i]))))
        weighted += conf * len(word)
        chars += len(word)
    text = "\n\n".join(
        "\n".join(" ".join(words) for _, words in sorted(lines.items())) for _, lines in sorted(paragraphs.items())
    )
    return OcrResult(
        text=text,
        words=len(boxes),
        confidence=weighted / chars if chars else 0.0,
        word_boxes=tuple(boxes),
        size=size,
        elapsed_ms=elapsed_ms,
    )
