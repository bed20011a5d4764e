"""The page router: each generated page goes where its content says, the text route keeps the words and their order,
OCR (the real Tesseract) reads scans, failures fall back and say so, and a rerun redoes nothing."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from click.testing import CliRunner
from PIL import Image

from pagescribe.cli import main
from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline import ConvertOptions, convert
from pagescribe.pipeline import ocr as ocr_module
from pagescribe.pipeline.ocr import OcrUnavailable
from pagescribe.pipeline.render import render_document
from pagescribe.pipeline.route import RouteOptions, Router
from pdfgen import (
    bar_chart_page,
    blank_page,
    diagram_page,
    garbled_page,
    image_page,
    table_page,
    text_page,
    two_column_page,
    underscored_page,
    write_pdf,
)

needs_tesseract = pytest.mark.skipif(
    not ocr_module.tesseract_available(),
    reason="Tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)",
)

PROSE = [
    "The committee met on the fourth of March to review the budget.",
    "Members agreed that the reserve fund should grow by nine percent.",
    "A second vote approved the new library opening hours for spring.",
    "The treasurer will publish the detailed accounts before the summer.",
]
LEFT = [f"Left column sentence {i} tells of rivers and old mills." for i in range(14)]
RIGHT = [f"Right column sentence {i} tells of harbours and ships." for i in range(14)]


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def recall(reference: str, text: str) -> float:
    ref = words(reference)
    return sum((ref & words(text)).values()) / max(1, sum(ref.values()))


def scan(pdf: Path, out: Path, *, dpi: int = 300, angle: float = 0.0, noise: float = 0.0) -> Path:
    """The PDF's first page as a scanner would give it: pixels only (no text layer), maybe tilted and noisy."""
    doc = pdfium.PdfDocument(pdf)
    try:
        image = doc[0].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    finally:
        doc.close()
    if angle:
        image = image.rotate(angle, fillcolor=255)
    if noise:
        pixels = np.asarray(image, dtype=np.int16) + np.random.default_rng(0).normal(0, noise, image.size[::-1])
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image.save(out)
    return out


def route_of(path: Path, **options: object) -> tuple[str, str, str]:
    router = Router(RouteOptions(**options))  # type: ignore[arg-type]
    [page] = list(render_document(path, analyze=True, ocr=router.ocr_wanted))
    routed = router.route(page)
    return routed.route, routed.reason, routed.text


# ---------------------------------------------------------------------------------------------- born-digital


def labelled_pages(tmp_path: Path) -> list[tuple[Path, str]]:
    """Generated pages and the route each should take."""
    pages = {
        "prose": (text_page("Minutes", PROSE), "text"),
        "two-column": (two_column_page("Two columns", LEFT, RIGHT), "text"),
        "table": (table_page("Prices", [["Item", "Price"], ["Tea", "3.20"], ["Cake", "4.10"]]), "vlm"),
        "diagram": (diagram_page("Flow", ["Ingest", "Render", "Describe"]), "vlm"),
        "chart": (bar_chart_page("Sales", [("North", 40), ("South", 75), ("East", 20)]), "vlm"),
        "photo": (image_page(seed=3), "vlm"),
    }
    return [(write_pdf(tmp_path / f"{name}.pdf", [page]), want) for name, (page, want) in pages.items()]


def test_born_digital_text_pages_skip_the_model_and_every_figure_goes_to_it(tmp_path: Path) -> None:
    engine = FakeEngine()
    labelled = labelled_pages(tmp_path)
    records = list(convert([p for p, _ in labelled], out_dir=tmp_path / "out", backend=engine))
    got = {Path(r.source).stem: r for r in records}
    for path, want in labelled:
        record = got[path.stem]
        assert record.route == want, (path.stem, record.route_reason)
        assert record.route_reason and record.status == "ok"
    assert len(engine.requests) == sum(1 for _, want in labelled if want == "vlm")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["routes"] == {"blank": 0, "text": 2, "ocr": 0, "vlm": 4}


def test_the_text_route_keeps_the_layer_s_words_and_reads_columns_in_order(tmp_path: Path) -> None:
    prose = write_pdf(tmp_path / "prose.pdf", [text_page("Minutes", PROSE)])
    route, _, text = route_of(prose)
    assert route == "text" and text.startswith("# Minutes\n\n")
    assert recall("Minutes " + " ".join(PROSE), text) >= 0.99
    assert text.index("fourth of March") < text.index("reserve fund") < text.index("before the summer")

    columns = write_pdf(tmp_path / "columns.pdf", [two_column_page("Two columns", LEFT, RIGHT)])
    [page] = list(render_document(columns, analyze=True))
    route, _, text = route_of(columns)
    assert route == "text" and recall(page.text_layer or "", text) >= 0.99
    # the whole left column before the right one, each in its own order
    assert text.index(LEFT[-1]) < text.index(RIGHT[0])
    assert text.index(LEFT[3]) < text.index(LEFT[4]) and text.index(RIGHT[3]) < text.index(RIGHT[4])


def test_headings_lists_and_aligned_tables_become_markdown(tmp_path: Path) -> None:
    content = text_page("Report", ["• first point", "• second point", "1. numbered"]).content
    rows = b"".join(
        b"BT /F1 12 Tf %d %d Td (%s) Tj ET\n" % (x, y, cell)
        for y, row in ((500, (b"Name", b"Qty")), (482, (b"Apples", b"12")), (464, (b"Pears", b"7")))
        for x, cell in zip((72, 300), row, strict=True)
    )
    pdf = write_pdf(tmp_path / "md.pdf", [type(text_page("x", []))(content + rows)])
    route, _, text = route_of(pdf)
    assert route == "text"
    assert "# Report" in text and "- first point\n- second point" in text and "1. numbered" in text
    assert "| Name | Qty |\n| --- | --- |\n| Apples | 12 |\n| Pears | 7 |" in text


def test_underscores_drawn_as_rules_are_text_not_a_ruled_table(tmp_path: Path) -> None:
    # TeX draws \_ as a short rule with no glyph: a manual full of identifiers has dozens of them per page
    lines = ["set the GPVAL_X_MIN and GPVAL_X_MAX variables", "x11_color resources", "a_b_c_d_e_f are six"]
    pdf = write_pdf(tmp_path / "ids.pdf", [underscored_page("Variables", lines)])
    route, reason, text = route_of(pdf)
    assert route == "text", reason
    assert "GPVAL_X_MIN and GPVAL_X_MAX" in text and "x11_color resources" in text and "a_b_c_d_e_f are" in text

    # the same short rules away from any word are a drawing (a dashed line): still the model's
    dashes = b"".join(b"%d 400 4 0.8 re f\n" % (72 + 12 * i) for i in range(12))
    content = underscored_page("Variables", ["no identifiers here"]).content + dashes
    pdf = write_pdf(tmp_path / "dashes.pdf", [type(text_page("x", []))(content)])
    route, reason, _ = route_of(pdf)
    assert route == "vlm" and "12 ruled lines" in reason


def test_forcing_a_route_and_the_no_model_case(tmp_path: Path) -> None:
    chart = write_pdf(tmp_path / "chart.pdf", [bar_chart_page("Sales", [("North", 40), ("South", 75)])])
    route, reason, text = route_of(chart, mode="text")
    assert route == "text" and "--route text" in reason and "North" in text

    records = list(convert([chart], out_dir=tmp_path / "out", backend=None, options=ConvertOptions(route="auto")))
    assert records[0].status == "failed" and records[0].reason == "no_model" and records[0].route == "vlm"
    assert "no model was given" in (records[0].error or "")


# ---------------------------------------------------------------------------------------------- OCR


@needs_tesseract
def test_ocr_reads_300_dpi_scans_of_text_pages_with_recall_over_95_percent(tmp_path: Path) -> None:
    for name, page in (("prose", text_page("Minutes", PROSE)), ("columns", two_column_page("Cols", LEFT, RIGHT))):
        pdf = write_pdf(tmp_path / f"{name}.pdf", [page])
        [born] = list(render_document(pdf))
        png = scan(pdf, tmp_path / f"{name}.png", angle=0.8, noise=10)
        route, reason, text = route_of(png)
        assert route == "ocr", reason
        assert "scanned text" in reason and "OCR confidence" in reason
        assert recall(born.text_layer or "", text) >= 0.95


@needs_tesseract
def test_scans_of_figures_charts_and_tables_go_to_the_model_with_the_ocr_text_as_anchor(tmp_path: Path) -> None:
    pages = {
        "chart": bar_chart_page("Sales by region", [("North", 40), ("South", 75), ("East", 20)]),
        "diagram": diagram_page("Process flow", ["Ingest", "Render", "Describe"]),
        "table": table_page("Prices", [["Item", "Price", "Stock"], ["Tea", "3.20", "12"], ["Cake", "4.10", "3"]]),
    }
    for name, page in pages.items():
        png = scan(write_pdf(tmp_path / f"{name}.pdf", [page]), tmp_path / f"{name}.png", dpi=200)
        router = Router(RouteOptions())
        [rendered] = list(render_document(png, ocr=router.ocr_wanted))
        routed = router.route(rendered)
        assert routed.route == "vlm", (name, routed.reason)
        assert routed.anchor and routed.anchor.split()[0] in page.content.decode("latin-1")


@needs_tesseract
def test_a_garbled_text_layer_falls_back_to_ocr_and_says_so(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "garbled.pdf", [garbled_page("Invoice", PROSE)])
    records = list(convert([pdf], out_dir=tmp_path / "out", backend=FakeEngine()))
    [record] = records
    assert record.route == "ocr" and "decodes to garbage" in (record.route_reason or "")
    assert recall(" ".join(PROSE), record.text) >= 0.95


@needs_tesseract
def test_a_tesseract_crash_falls_back_to_the_model_and_a_rerun_redoes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = scan(write_pdf(tmp_path / "p.pdf", [text_page("Minutes", PROSE)]), tmp_path / "p.png", dpi=150)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "tesseract"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *--list-langs*) exec /usr/bin/env -S tesseract \"$@\";; esac\n"
                    "echo 'Segmentation fault' >&2; exit 139\n")  # fmt: skip
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake))
    engine = FakeEngine()
    [record] = list(convert([png], out_dir=tmp_path / "out", backend=engine))
    assert record.route == "vlm" and record.status == "ok" and len(engine.requests) == 1
    assert "OCR failed" in (record.route_reason or "")

    monkeypatch.undo()
    again = FakeEngine()
    [rerun] = list(convert([png], out_dir=tmp_path / "out", backend=again))
    assert rerun.cached and not again.requests and rerun.text == record.text
    # the route is part of the cache key: asking for OCR redoes the page, with Tesseract this time
    [forced] = list(convert([png], out_dir=tmp_path / "out", backend=again, options=ConvertOptions(route="ocr")))
    assert forced.route == "ocr" and not forced.cached and recall(" ".join(PROSE), forced.text) >= 0.95


def test_without_tesseract_auto_says_so_once_and_route_ocr_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on it
    ocr_module.tesseract_available.cache_clear()
    ocr_module.installed_languages.cache_clear()
    try:
        pdf = write_pdf(tmp_path / "img.pdf", [image_page(seed=1), image_page(seed=2)])
        with caplog.at_level(logging.WARNING):
            records = list(convert([pdf], out_dir=tmp_path / "out", backend=FakeEngine()))
        assert [r.route for r in records] == ["vlm", "vlm"]
        assert all("no OCR engine" in (r.route_reason or "") for r in records)
        assert sum("Tesseract is not installed" in m for m in caplog.messages) == 1
        with pytest.raises(OcrUnavailable, match="tesseract-ocr tesseract-ocr-eng"):
            list(convert([pdf], out_dir=tmp_path / "out2", backend=FakeEngine(), options=ConvertOptions(route="ocr")))
        result = CliRunner().invoke(main, ["convert", str(pdf), "--out", str(tmp_path / "o3"), "--route", "ocr"])
        assert result.exit_code != 0 and "apt-get install tesseract-ocr" in result.output
    finally:
        ocr_module.tesseract_available.cache_clear()
        ocr_module.installed_languages.cache_clear()


@needs_tesseract
def test_convert_route_text_and_ocr_need_no_model_and_the_summary_counts_routes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "a.pdf", [text_page("Minutes", PROSE), blank_page()])
    scan(write_pdf(tmp_path / "b.pdf", [text_page("Notes", PROSE)]), docs / "b.png", dpi=200)
    result = CliRunner().invoke(main, ["convert", str(docs), "--out", str(tmp_path / "out"), "--route", "text",
                                       "--progress", "quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["routes"] == {"blank": 1, "text": 1, "ocr": 1, "vlm": 0}
    rows = [json.loads(line) for line in (tmp_path / "out" / "b.jsonl").read_text().splitlines()]
    assert rows[0]["route"] == "ocr" and "no text layer" in rows[0]["route_reason"]
    assert rows[0]["model"].startswith("tesseract") and "ocr_ms" in rows[0]["timings"]
    assert os.path.getsize(tmp_path / "out" / "a.md") > 0
