"""Scanned twins: a born-digital PDF page as a scanner would give it back, an image with no text layer.

Rendered in grey at the scan's DPI, turned by a slight angle (paper is never quite straight), given sensor noise
and saved as JPEG (with its compression artefacts). Seeded, so the same twin comes out every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image


@dataclass(frozen=True, slots=True)
class ScanStyle:
    """How a page is scanned: ``dpi``, ``angle`` in degrees (counter-clockwise), Gaussian ``noise`` (standard
    deviation, in grey levels of 255), JPEG ``quality``, and the noise's ``seed``."""

    dpi: int = 300
    angle: float = 0.8
    noise: float = 6.0
    quality: int = 80
    seed: int = 0

    def __post_init__(self) -> None:
        if not 50 <= self.dpi <= 600:
            raise ValueError(f"scan DPI {self.dpi} is outside 50-600")
        if abs(self.angle) > 10:
            raise ValueError(f"scan angle {self.angle} is more than 10 degrees")


def scan_twin(pdf: bytes | Path, *, page: int = 1, style: ScanStyle | None = None) -> bytes:
    """The JPEG bytes of page ``page`` (1-based) of ``pdf`` scanned in ``style`` (default ``ScanStyle()``)."""
    style = style or ScanStyle()
    doc = pdfium.PdfDocument(pdf if isinstance(pdf, Path) else io.BytesIO(pdf))
    try:
        bitmap = doc[page - 1].render(scale=style.dpi / 72.0, grayscale=True)
        image = bitmap.to_pil().convert("L")
    finally:
        doc.close()
    image = image.rotate(style.angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    pixels = np.asarray(image, dtype=np.float64)
    rng = np.random.default_rng(style.seed)
    pixels = pixels + rng.normal(0.0, style.noise, size=pixels.shape)
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")
    out = io.BytesIO()
    noisy.save(out, format="JPEG", quality=style.quality, dpi=(style.dpi, style.dpi))
    return out.getvalue()
