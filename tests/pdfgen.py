"""Test documents made on the fly: PDFs written as plain PDF syntax, so no PDF library is needed.

Pages hold real text (the standard Helvetica font, so PDFium extracts a text layer), ruled tables,
box-and-arrow diagrams, nothing at all, or only an embedded RGB image. ``encrypted=True`` adds a Standard
security handler whose password check no password passes: an encrypted PDF, to a reader without the password.
"""

from __future__ import annotations

import hashlib
import io
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

PAGE_W, PAGE_H = 612, 792  # US Letter, in points


@dataclass(frozen=True)
class Page:
    """A page's content stream, and the RGB image (width, height, pixels) it draws as /Im1, if any."""

    content: bytes = b""
    image: tuple[int, int, bytes] | None = None


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("cp1252")  # WinAnsiEncoding


def _text(x: float, y: float, text: str, *, size: int = 12) -> bytes:
    return b"BT /F1 %d Tf %.1f %.1f Td (" % (size, x, y) + _escape(text) + b") Tj ET\n"


def text_page(title: str, paragraphs: Sequence[str]) -> Page:
    """A heading and lines of body text."""
    out = [_text(72, 720, title, size=20)]
    y = 690.0
    for line in paragraphs:
        out.append(_text(72, y, line))
        y -= 18
    return Page(b"".join(out))


def table_page(title: str, rows: Sequence[Sequence[str]], *, col_w: float = 150, row_h: float = 24) -> Page:
    """A heading and a table with ruled cells."""
    out = [_text(72, 720, title, size=20)]
    top, left = 680.0, 72.0
    cols = max(len(r) for r in rows)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            out.append(_text(left + j * col_w + 6, top - (i + 1) * row_h + 8, cell))
    out.append(b"0.5 w\n")
    for i in range(len(rows) + 1):
        out.append(b"%.1f %.1f m %.1f %.1f l S\n" % (left, top - i * row_h, left + cols * col_w, top - i * row_h))
    for j in range(cols + 1):
        x = left + j * col_w
        out.append(b"%.1f %.1f m %.1f %.1f l S\n" % (x, top, x, top - len(rows) * row_h))
    return Page(b"".join(out))


def diagram_page(title: str, steps: Sequence[str]) -> Page:
    """A heading and a process flow: labelled boxes joined by arrows."""
    out = [_text(72, 720, title, size=20), b"1 w 0.2 0.3 0.8 RG\n"]
    x, y, w, h, gap = 72.0, 500.0, 120.0, 60.0, 40.0
    for i, label in enumerate(steps):
        bx = x + i * (w + gap)
        out.append(b"%.1f %.1f %.1f %.1f re S\n" % (bx, y, w, h))
        out.append(_text(bx + 10, y + 25, label))
        if i + 1 < len(steps):
            ax = bx + w
            out.append(b"%.1f %.1f m %.1f %.1f l S\n" % (ax, y + h / 2, ax + gap, y + h / 2))
            out.append(
                b"%.1f %.1f m %.1f %.1f l %.1f %.1f l f\n"
                % (ax + gap, y + h / 2, ax + gap - 8, y + h / 2 + 5, ax + gap - 8, y + h / 2 - 5)
            )
    return Page(b"".join(out))


def two_column_page(title: str, left: Sequence[str], right: Sequence[str]) -> Page:
    """A heading across the page, then two columns of body text (left read before right)."""
    out = [_text(72, 720, title, size=20)]
    for x, lines in ((72.0, left), (324.0, right)):
        y = 690.0
        for line in lines:
            out.append(_text(x, y, line, size=10))
            y -= 14
    return Page(b"".join(out))


def bar_chart_page(title: str, bars: Sequence[tuple[str, int]]) -> Page:
    """A heading and a bar chart: filled bars with their labels under them and their values over them."""
    out = [_text(72, 720, title, size=20), b"0.3 0.5 0.8 rg\n"]
    for i, (label, value) in enumerate(bars):
        x = 100.0 + i * 110
        out.append(b"%.1f 300 80 %.1f re f\n" % (x, value * 3.0))
        out.append(_text(x + 10, 280, label))
        out.append(_text(x + 25, 306 + value * 3.0, str(value)))
    out.append(b"0 0 0 RG 1 w 90 300 m 540 300 l S 90 300 m 90 620 l S\n")
    return Page(b"".join(out))


def underscored_page(title: str, lines: Sequence[str], *, size: int = 10) -> Page:
    """A heading and lines of Courier (every glyph 0.6 em wide) whose underscores are drawn as TeX draws ``\\_``:
    no character, a short filled rule just under the baseline between the words."""
    out = [_text(72, 720, title, size=20)]
    y = 690.0
    advance = 0.6 * size
    for line in lines:
        x = 72.0
        for i, part in enumerate(line.split("_")):
            if i:
                out.append(b"%.2f %.2f %.2f %.2f re f\n" % (x + 0.06 * size, y - 0.1 * size, 0.4 * size, 0.08 * size))
                x += 0.52 * size
            out.append(b"BT /F3 %d Tf %.2f %.2f Td (" % (size, x, y) + _escape(part) + b") Tj ET\n")
            x += advance * len(part)
        y -= 1.6 * size
    return Page(b"".join(out))


def garbled_page(title: str, lines: Sequence[str]) -> Page:
    """Readable text whose text layer decodes to garbage: drawn in /F2, whose Unicode map is broken."""
    return Page(text_page(title, lines).content.replace(b"/F1 ", b"/F2 "))


def blank_page() -> Page:
    """A page with nothing on it."""
    return Page(b"")


def image_page(seed: int, *, size: tuple[int, int] = (320, 240)) -> Page:
    """A page holding only an image (a scan, as far as the text layer knows): shapes in random colours."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, (250, 250, 245))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.randrange(size[0] - 40), rng.randrange(size[1] - 40)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x0, y0, x0 + rng.randrange(10, 40), y0 + rng.randrange(10, 40)), fill=colour)
    content = b"q 432 0 0 324 90 300 cm /Im1 Do Q\n"
    return Page(content, (size[0], size[1], img.tobytes()))


def build_pdf(pages: Sequence[Page], *, encrypted: bool = False) -> bytes:
    """The bytes of a PDF with these pages (an xref table with exact offsets, so no repair is needed)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below, once the page tree exists
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    # /F2 draws as Helvetica but its Unicode map sends every code to the private use area: readable on the page,
    # garbage in the text layer (what a subset font with a broken ToUnicode gives)
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Garbled def "
            b"1 begincodespacerange <00> <FF> endcodespacerange 1 beginbfrange <20> <7E> <E000> endbfrange "
            b"endcmap CMapName currentdict /CMap defineresource pop end end")
    to_unicode = add(b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream")
    garbled = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding "
                  b"/ToUnicode %d 0 R >>" % to_unicode)
    mono = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>")
    kids = []
    for page in pages:
        resources = b"/Font << /F1 %d 0 R /F2 %d 0 R /F3 %d 0 R >>" % (font, garbled, mono)
        if page.image is not None:
            w, h, rgb = page.image
            data = zlib.compress(rgb)
            img = add(
                b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
                % (w, h, len(data))
                + data
                + b"\nendstream"
            )
            resources += b" /XObject << /Im1 %d 0 R >>" % img
        stream = add(b"<< /Length %d >>\nstream\n" % len(page.content) + page.content + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << %s >> /Contents %d 0 R >>"
                % (pages_obj, PAGE_W, PAGE_H, resources, stream)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    trailer_extra = b""
    if encrypted:
        # Random /O and /U entries: the empty user password (or any other) fails the Standard handler's check.
        digest = hashlib.sha256(b"pagescribe-test").digest()
        enc = add(
            b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -3904 /O <%s> /U <%s> >>"
            % (digest.hex().encode(), digest[::-1].hex().encode())
        )
        trailer_extra = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (
            enc,
            digest[:16].hex().encode(),
            digest[:16].hex().encode(),
        )
    return _serialize(objects, catalog, trailer_extra)


def _serialize(objects: list[bytes], root: int, trailer_extra: bytes) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R%s >>\n" % (len(objects) + 1, root, trailer_extra))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def write_pdf(path: Path, pages: Sequence[Page], *, encrypted: bool = False) -> Path:
    """Write a PDF with these pages to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_pdf(pages, encrypted=encrypted))
    return path


#: The pages of ``twelve_page_pdf`` that are blank / image-only (1-based).
BLANK_PAGE = 6
IMAGE_PAGE = 7


def twelve_page_pages() -> list[Page]:
    """Text, a table, a drawn diagram, one blank page and one image-only page: twelve pages, all different."""
    pages: list[Page] = []
    for n in range(1, 13):
        if n == BLANK_PAGE:
            pages.append(blank_page())
        elif n == IMAGE_PAGE:
            pages.append(image_page(seed=n))
        elif n in (3, 9):
            rows = [
                ["Item", "Price", "Stock"],
                [f"Widget {n}", f"{n}.50 EUR", str(10 * n)],
                ["Gadget", "7.25 EUR", "3"],
            ]
            pages.append(table_page(f"Price list {n}", rows))
        elif n in (4, 11):
            pages.append(diagram_page(f"Process flow {n}", ["Ingest", "Render", f"Describe {n}"]))
        else:
            lines = [
                f"Quarterly report, section {n}.",
                "Revenue grew by 12 percent in the northern region.",
                f"Reference code PS-{n:04d}.",
            ]
            pages.append(text_page(f"Section {n}", lines))
    return pages


def twelve_page_pdf(path: Path) -> Path:
    """The acceptance document: 12 pages (see ``twelve_page_pages``)."""
    return write_pdf(path, twelve_page_pages())


def write_png(path: Path, *, text: str = "Hello page", size: tuple[int, int] = (400, 300)) -> Path:
    """A PNG with a frame and a line of text."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 10, size[0] - 10, size[1] - 10), outline="black", width=3)
    draw.text((30, size[1] // 2), text, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
