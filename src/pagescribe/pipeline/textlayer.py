"""A born-digital page read from its PDF: what is drawn on it, and its text in reading order as Markdown.

``read_layout`` measures the page's objects (images, vector paths, the text's characters and their boxes) for
the router, and rebuilds the text layer as a person reads it: columns found by a recursive XY cut (vertical
gutters first, so a two-column page reads left column then right), lines from the glyphs' baselines, words
from the gaps between glyphs, paragraphs from the gaps between lines, headings from font sizes larger than the
body's, list items from their bullets, and simple tables from lines whose cells line up. Characters drawn as
rules (TeX draws ``\\_`` as a short line under the baseline, with no glyph) are read back as the characters
they show. Coordinates are PDF points with the origin at the top left. Everything here runs under the
caller's PDFium lock.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

Box = tuple[float, float, float, float]  # x0, top, x1, bottom (points, origin top left)

#: The page is measured on a grid of cells this many points square (areas are fractions of grid cells).
GRID_PT = 4.0
#: A path thinner than this (points) in one direction is a rule: a line, an underline, a table's ruling.
RULE_PT = 2.5
#: A horizontal rule no longer than this many font sizes, touching a word on its line, is an underscore drawn
#: as a rule (TeX's ``\\_``): it is read as "_" and is not counted as a ruling.
UNDERSCORE_EM = 1.0
_BULLETS = "•◦▪‣∙·●○■□–—-*"
_NUMBERED = re.compile(r"^(\(?\d{1,3}[.)]|\(?[a-z][.)])\s")


@dataclass(frozen=True, slots=True)
class Glyph:
    """One character of the text layer with its box and font size (points)."""

    char: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float
    #: PDFium saw a space (written, or inferred from the layout) just before this glyph in the text's order.
    space_before: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    """Glyphs on one baseline, split into words; ``cells`` are runs separated by wide gaps (table cells)."""

    words: tuple[str, ...]
    cells: tuple[tuple[float, str], ...]
    x0: float
    top: float
    x1: float
    bottom: float
    size: float

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True, slots=True)
class PageLayout:
    """What is on a PDF page, for the router, and its text as Markdown.

    Areas are fractions of the page. ``drawing_area`` counts vector paths that are not rules (shapes, boxes,
    bars, curves); ``rules`` counts thin lines. ``bad_chars`` are characters that decode to nothing readable
    (U+FFFD, control and private-use codes): many of them mean a font without a usable Unicode map.
    """

    width: float
    height: float
    chars: int
    invisible_chars: int
    bad_chars: int
    images: int
    image_area: float
    paths: int
    rules: int
    drawing_area: float
    text_boxes: tuple[Box, ...]
    markdown: str

    @property
    def garbled(self) -> bool:
        """True when the text layer is mostly unreadable codes, or has no letter or digit at all."""
        if self.chars == 0:
            return False
        return self.bad_chars / self.chars > 0.1 or not any(ch.isalnum() for ch in self.markdown)


def layer_problem(layout: PageLayout | None) -> str | None:
    """``None`` when a PDF page's text layer can be used as its text, else why not."""
    if layout is None or (layout.chars == 0 and not layout.invisible_chars):
        return "no text layer"
    if layout.invisible_chars >= layout.chars:
        return "the text layer is invisible (a scanner's OCR layer)"
    if layout.garbled:
        return f"the text layer decodes to garbage ({layout.bad_chars} of {layout.chars} characters unreadable)"
    return None


def read_layout(page: pdfium.PdfPage, textpage: pdfium.PdfTextPage) -> PageLayout:
    """Measure a page and rebuild its text (PDFium objects; the caller holds the PDFium lock)."""
    width, height = page.get_size()
    glyphs, invisible, bad = _glyphs(textpage, height)
    images, image_area, paths, rule_boxes, drawing_area = _objects(page, width, height)
    glyphs, rules = _underscores(glyphs, rule_boxes)
    lines = _lines(glyphs)
    return PageLayout(
        width=width,
        height=height,
        chars=len(glyphs),
        invisible_chars=invisible,
        bad_chars=bad,
        images=images,
        image_area=image_area,
        paths=paths,
        rules=len(rules),
        drawing_area=drawing_area,
        text_boxes=tuple((ln.x0, ln.top, ln.x1, ln.bottom) for ln in lines),
        markdown=to_markdown(glyphs),
    )


# ---------------------------------------------------------------------------------------------- measuring


def _glyphs(textpage: pdfium.PdfTextPage, height: float) -> tuple[list[Glyph], int, int]:
    """The page's visible, non-space characters with their boxes; counts of invisible and unreadable ones."""
    raw = textpage.raw
    glyphs: list[Glyph] = []
    invisible = bad = 0
    space = False
    for index in range(pdfium_c.FPDFText_CountChars(raw)):
        code = pdfium_c.FPDFText_GetUnicode(raw, index)
        char = chr(code) if 0 < code < 0x110000 else "\ufffd"
        if char.isspace():
            space = True
            continue
        if pdfium_c.FPDFText_IsGenerated(raw, index) == 1:
            continue
        if _unreadable(char):
            bad += 1
        if _invisible(raw, index):
            invisible += 1
            continue
        # loose boxes span the glyph's advance and the font's height: gaps between them are the spacing
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
        size = float(pdfium_c.FPDFText_GetFontSize(raw, index)) or (top - bottom)
        glyphs.append(Glyph(char, left, height - top, right, height - bottom, size, space))
        space = False
    return glyphs, invisible, bad


def _unreadable(char: str) -> bool:
    return char == "\ufffd" or unicodedata.category(char) in ("Cc", "Co", "Cn", "Cs")


def _invisible(raw: object, index: int) -> bool:
    """Text drawn in render mode 3 (invisible): the OCR layer a scanner put over its image."""
    obj = pdfium_c.FPDFText_GetTextObject(raw, index)
    return bool(obj) and pdfium_c.FPDFTextObj_GetTextRenderMode(obj) == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE


def _objects(page: pdfium.PdfPage, width: float, height: float) -> tuple[int, float, int, list[Box], float]:
    """Image objects and the page share they cover; path objects, the boxes of those that are rules, and the
    share the other paths (shapes) cover."""
    cols, rows = max(1, int(width / GRID_PT) + 1), max(1, int(height / GRID_PT) + 1)
    image_grid = np.zeros((rows, cols), dtype=bool)
    drawing_grid = np.zeros((rows, cols), dtype=bool)
    images = paths = 0
    rules: list[Box] = []
    for obj in page.get_objects(max_depth=8):
        kind = obj.type
        if kind not in (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_SHADING):
            continue
        x0, y0, x1, y1 = obj.get_bounds()
        x0, x1 = max(0.0, x0), min(width, x1)
        y0, y1 = max(0.0, y0), min(height, y1)
        if x1 <= x0 and y1 <= y0:
            continue
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            images += 1
            _mark(image_grid, x0, height - y1, x1, height - y0)
            continue
        paths += 1
        if min(x1 - x0, y1 - y0) <= RULE_PT:
            rules.append((x0, height - y1, x1, height - y0))
            continue
        if (x1 - x0) * (y1 - y0) >= 0.9 * width * height:
            continue  # a page-sized frame or background fill says nothing about figures
        _mark(drawing_grid, x0, height - y1, x1, height - y0)
    return images, float(image_grid.mean()), paths, rules, float(drawing_grid.mean())


def _underscores(glyphs: list[Glyph], rules: list[Box]) -> tuple[list[Glyph], list[Box]]:
    """The glyphs with an "_" added for every short rule that sits in a line of text just after or before a
    glyph (within half a font size), and the rules that are left: the page's rulings."""
    largest = max((g.size for g in glyphs), default=0.0)
    short = [r for r in rules if r[3] - r[1] <= r[2] - r[0] <= UNDERSCORE_EM * largest]
    if not short:
        return glyphs, rules
    out = list(glyphs)
    tops = np.array([g.top for g in glyphs])
    bottoms = np.array([g.bottom for g in glyphs])
    underscores: set[Box] = set()
    for x0, top, x1, bottom in sorted(short):
        middle = (top + bottom) / 2
        line = np.flatnonzero((tops <= middle) & (middle <= bottoms)).tolist()
        if not line:
            continue
        size = statistics.median(glyphs[i].size for i in line)
        left = [i for i in line if x0 - 0.5 * size <= glyphs[i].x1 <= x0 + 0.2 * size]
        right = [i for i in line if x1 - 0.2 * size <= glyphs[i].x0 <= x1 + 0.5 * size]
        if x1 - x0 > UNDERSCORE_EM * size or not (left or right):
            continue
        near = glyphs[(left or right)[0]]
        gap = x0 - glyphs[left[0]].x1 if left else size
        out.append(Glyph("_", x0, near.top, x1, near.bottom, near.size, space_before=gap > 0.15 * size))
        for i in right:  # PDFium sees a space where the rule stands: the word goes on through it
            if glyphs[i].x0 - x1 <= 0.15 * size:
                out[i] = dataclasses.replace(out[i], space_before=False)
        underscores.add((x0, top, x1, bottom))
    return out, [r for r in rules if r not in underscores]


def _mark(grid: np.ndarray, x0: float, top: float, x1: float, bottom: float) -> None:
    c0, c1 = int(x0 / GRID_PT), int(np.ceil(x1 / GRID_PT))
    r0, r1 = int(top / GRID_PT), int(np.ceil(bottom / GRID_PT))
    grid[max(0, r0) : max(r0 + 1, r1), max(0, c0) : max(c0 + 1, c1)] = True


# ---------------------------------------------------------------------------------------------- reading order


def to_markdown(glyphs: Sequence[Glyph]) -> str:
    """The glyphs as Markdown in reading order: blocks from the XY cut, each a heading, list, table or
    paragraph (lines kept as lines), blocks separated by blank lines."""
    if not glyphs:
        return ""
    body = statistics.median(g.size for g in glyphs)
    sizes = sorted({round(g.size) for g in glyphs if g.size >= 1.2 * body}, reverse=True)
    blocks = [_lines(part) for part in _xy_cut(list(glyphs), body)]
    out: list[str] = []
    for lines in blocks:
        out.extend(_block_markdown(lines, body, sizes))
    return "\n\n".join(chunk for chunk in out if chunk.strip())


def _xy_cut(glyphs: list[Glyph], body: float) -> list[list[Glyph]]:
    """Split a region into blocks in reading order: at a vertical gutter (left part first) when both sides are
    running text, else at the gaps between paragraphs (top part first); a region with neither is one block."""
    if len(glyphs) < 2:
        return [glyphs]
    column = _column_split(glyphs, body)
    if column is not None:
        left = [g for g in glyphs if g.x1 <= column]
        right = [g for g in glyphs if g.x1 > column]
        return _xy_cut(left, body) + _xy_cut(right, body)
    rows = _row_splits(glyphs, body)
    if len(rows) > 1:
        return [block for part in rows for block in _xy_cut(part, body)]
    return [glyphs]


def _column_split(glyphs: list[Glyph], body: float) -> float | None:
    """The x of a gutter: a band at least one body size wide that no glyph crosses, with running text (long
    lines, not table cells) on both sides."""
    x_min = min(g.x0 for g in glyphs)
    x_max = max(g.x1 for g in glyphs)
    span = x_max - x_min
    if span < 12 * body:
        return None
    bins = int(span) + 1
    covered = np.zeros(bins, dtype=bool)
    for g in glyphs:
        covered[int(g.x0 - x_min) : int(np.ceil(g.x1 - x_min)) + 1] = True
    best: tuple[int, int] | None = None
    start = None
    for i, c in enumerate(covered):
        if not c and start is None:
            start = i
        elif c and start is not None:
            if i - start >= body and (best is None or i - start > best[1] - best[0]):
                best = (start, i)
            start = None
    if best is None:
        return None
    cut = x_min + (best[0] + best[1]) / 2
    left = [g for g in glyphs if g.x1 <= cut]
    right = [g for g in glyphs if g.x1 > cut]
    if min(cut - x_min, x_max - cut) < 0.25 * span:
        return None
    if not (_running_text(left, body) and _running_text(right, body)):
        return None
    return cut


def _running_text(glyphs: list[Glyph], body: float) -> bool:
    """Several lines, most of them long (more than ~20 glyphs): a column of prose, not a column of cells."""
    lines = _lines(glyphs)
    if len(lines) < 3:
        return False
    long = sum(1 for ln in lines if sum(len(w) for w in ln.words) >= 20)
    return long >= 0.5 * len(lines)


def _row_splits(glyphs: list[Glyph], body: float) -> list[list[Glyph]]:
    """The region split at vertical gaps wider than a paragraph break (0.8 body sizes of white between the
    glyphs' loose boxes, which already hold the line spacing)."""
    ordered = sorted(glyphs, key=lambda g: g.top)
    parts: list[list[Glyph]] = [[ordered[0]]]
    bottom = ordered[0].bottom
    for g in ordered[1:]:
        if g.top - bottom > 0.8 * body:
            parts.append([])
        parts[-1].append(g)
        bottom = max(bottom, g.bottom)
    return parts


def _lines(glyphs: Sequence[Glyph]) -> list[Line]:
    """Glyphs grouped into lines (vertical centres within half a glyph height), each read left to right."""
    rows: list[list[Glyph]] = []
    for g in sorted(glyphs, key=lambda g: ((g.top + g.bottom) / 2, g.x0)):
        centre = (g.top + g.bottom) / 2
        if rows:
            last = rows[-1]
            ref = statistics.median((x.top + x.bottom) / 2 for x in last[-8:])
            height = max(max(x.bottom - x.top for x in last[-8:]), g.bottom - g.top, 1.0)
            if abs(centre - ref) <= 0.5 * height:
                last.append(g)
                continue
        rows.append([g])
    return [_line(sorted(row, key=lambda g: g.x0)) for row in rows]


def _line(row: list[Glyph]) -> Line:
    size = statistics.median(g.size for g in row)
    words: list[str] = []
    cells: list[tuple[float, list[str]]] = []
    current = row[0].char
    cell_words: list[str] = []
    cell_x = row[0].x0
    for prev, g in itertools.pairwise(row):
        gap = g.x0 - prev.x1
        if gap > 0.15 * size or (g.space_before and gap > -0.05 * size):
            words.append(current)
            cell_words.append(current)
            current = ""
            if gap > 1.5 * size:
                cells.append((cell_x, cell_words))
                cell_words, cell_x = [], g.x0
        current += g.char
    words.append(current)
    cell_words.append(current)
    cells.append((cell_x, cell_words))
    return Line(
        words=tuple(words),
        cells=tuple((x, " ".join(ws)) for x, ws in cells),
        x0=row[0].x0,
        top=min(g.top for g in row),
        x1=max(g.x1 for g in row),
        bottom=max(g.bottom for g in row),
        size=size,
    )


# ---------------------------------------------------------------------------------------------- Markdown


def _block_markdown(lines: list[Line], body: float, heading_sizes: list[int]) -> list[str]:
    """One block's Markdown pieces: headings (lines set larger than the body), then a table, list items, or
    paragraphs with their line breaks."""
    out: list[str] = []
    run: list[Line] = []
    for ln in lines:
        if ln.size >= 1.2 * body and sum(len(w) for w in ln.words) <= 120:
            out.extend(_run_markdown(run, body))
            run = []
            level = min(heading_sizes.index(round(ln.size)) + 1 if round(ln.size) in heading_sizes else 1, 3)
            heading = "#" * level + " " + ln.text
            if out and out[-1].startswith(heading.split(" ", 1)[0] + " ") and not run:
                out[-1] += " " + ln.text  # a heading set on two lines
            else:
                out.append(heading)
        else:
            run.append(ln)
    out.extend(_run_markdown(run, body))
    return out


def _run_markdown(lines: list[Line], body: float) -> list[str]:
    """Body lines: a table when their cells line up, else list items and paragraphs (line breaks kept)."""
    if not lines:
        return []
    table = _table(lines)
    if table is not None:
        return [table]
    out: list[str] = []
    paragraph: list[str] = []
    for ln in lines:
        item = _list_item(ln.text)
        if item is not None:
            if paragraph:
                out.append("\n".join(paragraph))
                paragraph = []
            out.append(item)
        elif out and _is_item(out[-1]) and not paragraph and ln.x0 > lines[0].x0 + 0.5 * body:
            out[-1] += " " + ln.text  # a wrapped list item: indented under its bullet
        else:
            paragraph.append(ln.text)
    if paragraph:
        out.append("\n".join(paragraph))
    return ["\n".join(out)] if out else []


def _is_item(text: str) -> bool:
    return text.startswith("- ") or _NUMBERED.match(text) is not None


def _list_item(text: str) -> str | None:
    if text[:1] in _BULLETS and len(text) > 1 and (text[1:2].isspace() or text[0] in "•◦▪‣●○■□"):
        return "- " + text[1:].strip()
    match = _NUMBERED.match(text)
    if match:
        return match.group(1).strip("()") + " " + text[match.end() :].strip()
    return None


def _table(lines: list[Line]) -> str | None:
    """A Markdown table when three or more lines have the same number (≥ 2) of cells starting at the same
    places; the first such line is the header."""
    if len(lines) < 3:
        return None
    counts = [len(ln.cells) for ln in lines]
    width = statistics.mode(counts)
    if width < 2 or sum(1 for c in counts if c == width) < 0.8 * len(lines):
        return None
    starts = [[x for x, _ in ln.cells] for ln in lines if len(ln.cells) == width]
    for column in range(width):
        xs = [row[column] for row in starts]
        if max(xs) - min(xs) > 0.25 * (max(ln.x1 for ln in lines) - min(ln.x0 for ln in lines)) / width:
            return None
    rows = []
    for ln in lines:
        cells = [c.replace("|", "\\|") for _, c in ln.cells]
        cells += [""] * (width - len(cells))
        rows.append("| " + " | ".join(cells[:width]) + " |")
    rows.insert(1, "|" + " --- |" * width)
    return "\n".join(rows)
