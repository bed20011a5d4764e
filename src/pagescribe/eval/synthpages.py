"""Pages drawn with known facts (reportlab): text in one and two columns, a ruled table, a bar chart with
labelled values, a flow diagram, a blank and a near-blank page.

Each generator returns a ``SynthPage``: the one-page PDF and what a page set says about it (category, the route a
router should choose, the reference text, the checks), taken from what was drawn, never from reading it back.
``write_synthetic`` writes them, and scanned twins of the text pages (``scans``), as a page set.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pagescribe.eval.pageset import Route
from pagescribe.eval.scans import ScanStyle, scan_twin

PAGE_W, PAGE_H = 612.0, 792.0  # US Letter, in points
MARGIN = 72.0


@dataclass(frozen=True, slots=True)
class SynthPage:
    """A generated page and what is known about it; ``checks`` in their ``pageset.jsonl`` form."""

    name: str
    category: str
    pdf: bytes
    expected_route: Route
    reference: str | None
    checks: tuple[dict[str, Any], ...] = ()

    def line(self, file: str, **overrides: Any) -> dict[str, Any]:
        """This page's ``pageset.jsonl`` line, its file at ``file`` (relative to the set)."""
        line: dict[str, Any] = {"id": self.name, "file": file, "category": self.category,
                                "expected_route": self.expected_route}
        if self.reference is not None:
            line["reference"] = self.reference
        line["checks"] = list(self.checks)
        return {**line, **overrides}


def _reportlab() -> Any:
    """The reportlab canvas module, or a clear error naming the extra that installs it."""
    try:
        from reportlab.pdfgen import canvas
    except ImportError as exc:  # pragma: no cover - reportlab is in the dev and eval extras
        raise ModuleNotFoundError(
            "generated pages need reportlab: pip install 'pagescribe[eval]' (or reportlab)"
        ) from exc
    return canvas


def _draw(paint: Callable[[Any], None]) -> bytes:
    """A one-page PDF of what ``paint`` draws on a reportlab canvas (fonts: the standard Helvetica)."""
    canvas = _reportlab()
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=(PAGE_W, PAGE_H), invariant=1)
    paint(page)
    page.showPage()
    page.save()
    return out.getvalue()


def _text_block(page: Any, paragraphs: Sequence[str], *, x: float, y: float, width: float, size: float = 11) -> float:
    """Paragraphs wrapped to ``width`` from the top ``y`` down; returns the ``y`` below the last line."""
    from reportlab.lib.utils import simpleSplit

    leading = size * 1.35
    for paragraph in paragraphs:
        for line in simpleSplit(paragraph, "Helvetica", size, width):
            page.setFont("Helvetica", size)
            page.drawString(x, y, line)
            y -= leading
        y -= leading * 0.6
    return y


def _title(page: Any, text: str, *, y: float = PAGE_H - MARGIN) -> None:
    page.setFont("Helvetica-Bold", 18)
    page.drawString(MARGIN, y, text)


# ---------------------------------------------------------------------------------------------- text pages

LIGHTHOUSE_TITLE = "Harbour Lights of the Northern Coast"
LIGHTHOUSE = (
    "The lighthouse at Kestrel Point was first lit in 1842, after a winter in which four ships were lost on the "
    "reef below the cliffs. Its keeper, Agnes Morrow, kept a logbook of every vessel that passed, and her entries "
    "remain the best record of traffic along the coast.",
    "Each evening the lamp was trimmed at sunset and the clockwork that turned the lens was wound by hand. A full "
    "turn of the lens took thirty seconds, so sailors could tell Kestrel Point from the lights to the north, which "
    "turned twice as fast.",
    "In 1911 the oil lamp gave way to an incandescent mantle, and the range of the light grew from fourteen to "
    "nineteen nautical miles. The keepers' cottages were enlarged in the same year to house a second family.",
    "The station was automated in 1987. The logbooks, the original lens and a model of the clockwork are kept "
    "today in the harbour museum, which is open every day except Monday.",
)


def single_column() -> SynthPage:
    """A heading and four paragraphs across the page."""

    def paint(page: Any) -> None:
        _title(page, LIGHTHOUSE_TITLE)
        _text_block(page, LIGHTHOUSE, x=MARGIN, y=PAGE_H - MARGIN - 36, width=PAGE_W - 2 * MARGIN)

    checks = (
        {"type": "present", "text": LIGHTHOUSE_TITLE},
        {"type": "present", "text": "kept a logbook of every vessel that passed"},
        {"type": "present", "text": "from fourteen to nineteen nautical miles"},
        {"type": "order", "before": "was first lit in 1842", "after": "The station was automated in 1987"},
        {"type": "absent", "text": "the lighthouse was demolished"},
    )
    reference = "\n\n".join((LIGHTHOUSE_TITLE, *LIGHTHOUSE))
    return SynthPage("synth-single-column", "born-digital", _draw(paint), "text", reference, checks)


BIRDS_TITLE = "Field Notes on River Birds"
BIRDS_LEFT = (
    "Along the upper river the grey heron hunts alone, standing motionless in the shallows for many minutes "
    "before it strikes. Herons nest together, however, in colonies that may hold forty nests in a single stand "
    "of alder.",
    "The kingfisher is harder to see than to hear. Its call, a thin whistle repeated twice, usually comes a moment "
    "before the bird itself flashes past just above the water.",
)
BIRDS_RIGHT = (
    "Downstream, where the river widens into reed beds, the sedge warbler sings from the tops of the stems "
    "through May and June. Its song is a rapid jumble of borrowed phrases.",
    "Counts made each spring since 2004 show the reed bed population rising from twelve singing males to "
    "thirty-one, a change the survey team credits to the end of summer cutting.",
)


def two_column() -> SynthPage:
    """A heading over two columns of text: a reader finishes the left column before the right one starts."""
    gap = 24.0
    width = (PAGE_W - 2 * MARGIN - gap) / 2

    def paint(page: Any) -> None:
        _title(page, BIRDS_TITLE)
        top = PAGE_H - MARGIN - 36
        _text_block(page, BIRDS_LEFT, x=MARGIN, y=top, width=width)
        _text_block(page, BIRDS_RIGHT, x=MARGIN + width + gap, y=top, width=width)

    checks = (
        {"type": "present", "text": BIRDS_TITLE},
        {"type": "present", "text": "Its song is a rapid jumble of borrowed phrases"},
        {"type": "order", "before": "in a single stand of alder", "after": "Downstream, where the river widens"},
        {"type": "order", "before": "the bird itself flashes past", "after": "rising from twelve singing males"},
        {"type": "order", "before": "the grey heron hunts alone", "after": "The kingfisher is harder to see"},
    )
    reference = "\n\n".join((BIRDS_TITLE, *BIRDS_LEFT, *BIRDS_RIGHT))
    return SynthPage("synth-two-column", "two-column", _draw(paint), "text", reference, checks)


def near_blank_page() -> SynthPage:
    """Nothing but a page number at the foot: visible content, and text the text layer has."""

    def paint(page: Any) -> None:
        page.setFont("Helvetica", 10)
        page.drawCentredString(PAGE_W / 2, 40, "7")

    return SynthPage("synth-near-blank", "near-blank", _draw(paint), "text", "7", ({"type": "present", "text": "7"},))


def blank_page() -> SynthPage:
    """A page with nothing on it."""
    return SynthPage("synth-blank", "blank", _draw(lambda page: None), "blank", None, ())


# ------------------------------------------------------------------------------------------ tables, figures

TABLE_TITLE = "Regional sales, third quarter"
TABLE_ROWS = (
    ("Region", "Units", "Revenue (kEUR)", "Growth"),
    ("North", "1,204", "38.5", "+4.1%"),
    ("South", "987", "31.2", "-2.3%"),
    ("East", "1,530", "47.9", "+6.8%"),
    ("West", "764", "22.6", "+0.9%"),
)


def ruled_table() -> SynthPage:
    """A heading and a table ruled on every side of every cell. Every word of it is in the text layer, but its rules
    are a drawing: the router sends ruled tables to the model (``pipeline.route``), so that is its expected route."""
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    def paint(page: Any) -> None:
        _title(page, TABLE_TITLE)
        table = Table([list(r) for r in TABLE_ROWS], colWidths=[110, 90, 130, 90], rowHeights=24)
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.75, colors.black),
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 11),
            ("FONT", (0, 1), (-1, -1), "Helvetica", 11),
            ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]))  # fmt: skip
        _, height = table.wrapOn(page, PAGE_W - 2 * MARGIN, PAGE_H)
        table.drawOn(page, MARGIN, PAGE_H - MARGIN - 40 - height)

    checks = (
        {"type": "present", "text": TABLE_TITLE},
        {"type": "table", "cells": ["Region", "Units", "Revenue (kEUR)", "Growth"]},
        {"type": "table", "cells": ["North", "1,204", "38.5", "+4.1%"]},
        {"type": "table", "cells": ["East", "1,530", "47.9"]},
        {"type": "table", "cells": ["West", "764", "22.6"]},
    )
    reference = "\n".join((TABLE_TITLE, *(" ".join(row) for row in TABLE_ROWS)))
    return SynthPage("synth-table", "table", _draw(paint), "vlm", reference, checks)


CHART_TITLE = "Metal output by mine, 2024 (kilotonnes)"
CHART_BARS = (("Copper", 12.5), ("Zinc", 30.2), ("Nickel", 41.7), ("Tin", 18.4))


def bar_chart() -> SynthPage:
    """A bar chart whose bars carry their values; the checks ask for each value next to its bar's name."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing

    def paint(page: Any) -> None:
        _title(page, CHART_TITLE)
        drawing = Drawing(440, 300)
        chart = VerticalBarChart()
        chart.x, chart.y, chart.width, chart.height = 50, 40, 370, 230
        chart.data = [[v for _, v in CHART_BARS]]
        chart.categoryAxis.categoryNames = [n for n, _ in CHART_BARS]
        chart.categoryAxis.labels.fontSize = 11
        chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 50, 10
        chart.barLabelFormat = "%.1f"
        chart.barLabels.nudge = 8
        chart.barLabels.fontSize = 11
        drawing.add(chart)
        renderPDF.draw(drawing, page, MARGIN, PAGE_H - MARGIN - 340)

    checks: tuple[dict[str, Any], ...] = (
        {"type": "present", "text": CHART_TITLE},
        *({"type": "number", "label": name, "value": value} for name, value in CHART_BARS),
    )
    return SynthPage("synth-bar-chart", "chart", _draw(paint), "vlm", None, checks)


FLOW_STEPS = ("Receive order", "Check stock", "Pack parcel", "Ship parcel")


def flow_diagram() -> SynthPage:
    """Boxes joined by labelled arrows: an order's path, with a branch when the stock is short."""

    def paint(page: Any) -> None:
        _title(page, "Order handling")
        x, w, h, step = 160.0, 170.0, 40.0, 90.0
        top = PAGE_H - MARGIN - 90
        for i, label in enumerate(FLOW_STEPS):
            _box(page, x, top - i * step, w, h, label)
            if i:
                _arrow(page, x + w / 2, top - (i - 1) * step, x + w / 2, top - i * step + h)
        _box(page, x + w + 80, top - step, 150, h, "Notify customer")
        _arrow(page, x + w, top - step + h / 2, x + w + 80, top - step + h / 2)
        page.setFont("Helvetica-Oblique", 10)
        page.drawString(x + w + 10, top - step + h / 2 + 6, "out of stock")
        page.drawString(x + w / 2 + 8, top - step - (step - h) / 2, "in stock")

    checks: tuple[dict[str, Any], ...] = (
        *({"type": "present", "text": step} for step in FLOW_STEPS),
        {"type": "present", "text": "Notify customer"},
        {"type": "present", "text": "out of stock"},
        {"type": "order", "before": "Receive order", "after": "Ship parcel"},
    )
    return SynthPage("synth-flow-diagram", "diagram", _draw(paint), "vlm", None, checks)


def _box(page: Any, x: float, y: float, w: float, h: float, label: str) -> None:
    page.setLineWidth(1.2)
    page.roundRect(x, y, w, h, 6, stroke=1, fill=0)
    page.setFont("Helvetica", 12)
    page.drawCentredString(x + w / 2, y + h / 2 - 4, label)


def _arrow(page: Any, x1: float, y1: float, x2: float, y2: float) -> None:
    """A line from (x1, y1) to (x2, y2) with a filled head at the end (axis-aligned arrows only)."""
    page.setLineWidth(1.2)
    page.line(x1, y1, x2, y2)
    dx, dy = (x2 > x1) - (x2 < x1), (y2 > y1) - (y2 < y1)
    path = page.beginPath()
    path.moveTo(x2, y2)
    path.lineTo(x2 - 8 * dx - 4 * dy, y2 - 8 * dy - 4 * dx)
    path.lineTo(x2 - 8 * dx + 4 * dy, y2 - 8 * dy + 4 * dx)
    path.close()
    page.drawPath(path, stroke=1, fill=1)


GENERATORS: tuple[Callable[[], SynthPage], ...] = (
    single_column, two_column, ruled_table, bar_chart, flow_diagram, blank_page, near_blank_page,
)  # fmt: skip


def all_pages() -> list[SynthPage]:
    """One page of each kind."""
    return [make() for make in GENERATORS]


# ---------------------------------------------------------------------------------------------- page sets


def write_synthetic(
    folder: Path,
    pages: Iterable[SynthPage] | None = None,
    *,
    scans: Sequence[ScanStyle] = (ScanStyle(),),
    scan_categories: frozenset[str] = frozenset({"born-digital", "two-column"}),
) -> list[dict[str, Any]]:
    """Write the pages (default ``all_pages()``) as ``synth/NAME.pdf`` under ``folder``, and for each page of
    ``scan_categories`` one scanned twin per style (``scans/NAME-DPI.jpg``, category ``scan``, expected route
    ``ocr``, the born-digital page's reference and checks). Returns their ``pageset.jsonl`` lines, for
    ``write_pageset`` (with any other pages)."""
    lines: list[dict[str, Any]] = []
    (folder / "synth").mkdir(parents=True, exist_ok=True)
    for page in all_pages() if pages is None else pages:
        (folder / "synth" / f"{page.name}.pdf").write_bytes(page.pdf)
        lines.append(page.line(f"synth/{page.name}.pdf"))
        if page.category not in scan_categories:
            continue
        for style in scans:
            lines.append(write_scan(folder, page.name, page.pdf, page.line(""), style))
    return lines


def write_scan(folder: Path, name: str, pdf: bytes | Path, twin: dict[str, Any], style: ScanStyle,
               *, page: int = 1) -> dict[str, Any]:
    """The scanned twin of a PDF page as ``scans/NAME-DPI.jpg`` under ``folder``, and its page set line: the
    twin's line (``twin``) with the scan's id and file, category ``scan`` and expected route ``ocr``."""
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    scan_id = f"{name}-scan{style.dpi}"
    file = f"scans/{scan_id}.jpg"
    (folder / file).write_bytes(scan_twin(pdf, page=page, style=style))
    line = {k: v for k, v in twin.items() if k != "page"}
    return {**line, "id": scan_id, "file": file, "category": "scan", "expected_route": "ocr"}

