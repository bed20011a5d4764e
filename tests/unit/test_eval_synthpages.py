"""Generated pages hold the facts they claim, and their scanned twins are images without a text layer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from pagescribe.eval.checks import parse_checks, run_checks
from pagescribe.eval.metrics import word_recall
from pagescribe.eval.pageset import load_pageset, write_pageset
from pagescribe.eval.reference import checks_from_text, page_text
from pagescribe.eval.scans import ScanStyle, scan_twin
from pagescribe.eval.synthpages import all_pages, single_column, write_synthetic

pytest.importorskip("reportlab")


@pytest.fixture(scope="module")
def pages_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_pageset(root, write_synthetic(root, scans=(ScanStyle(dpi=150),)))
    return root


def test_the_text_layer_of_each_text_page_passes_its_own_checks(pages_dir: Path) -> None:
    for spec in load_pageset(pages_dir).pages:
        if spec.category not in ("born-digital", "two-column", "table", "near-blank"):
            continue
        text = page_text(spec.file, 1)
        assert all(r.passed for r in run_checks(spec.checks, text)), (spec.id, run_checks(spec.checks, text))
        assert word_recall(spec.reference or "", text) == 1.0, spec.id


def test_a_chart_text_layer_loses_which_value_belongs_to_which_bar(pages_dir: Path) -> None:
    (chart,) = [p for p in load_pageset(pages_dir).pages if p.category == "chart"]
    results = run_checks(chart.checks, page_text(chart.file, 1))
    assert [r.passed for r in results] == [True, False, False, False, False]  # title found, values apart


def test_the_set_has_each_kind_of_page_and_scanned_twins_of_the_text_pages(pages_dir: Path) -> None:
    specs = {p.id: p for p in load_pageset(pages_dir).pages}
    assert {p.category for p in specs.values()} == {
        "born-digital", "two-column", "table", "chart", "diagram", "blank", "near-blank", "scan"
    }  # fmt: skip
    scans = [p for p in specs.values() if p.category == "scan"]
    assert sorted(p.id for p in scans) == ["synth-single-column-scan150", "synth-two-column-scan150"]
    twin = specs["synth-single-column"]
    scan = specs["synth-single-column-scan150"]
    assert (scan.expected_route, scan.reference, scan.checks) == ("ocr", twin.reference, twin.checks)
    assert [p.id for p in specs.values() if p.expected_route == "vlm"] == [
        "synth-table", "synth-bar-chart", "synth-flow-diagram"
    ]  # fmt: skip
    assert page_text(specs["synth-blank"].file, 1) == ""


def test_a_scanned_twin_is_a_tilted_noisy_jpeg_at_its_dpi() -> None:
    pdf = single_column().pdf
    data = scan_twin(pdf, style=ScanStyle(dpi=200, angle=1.5, seed=3))
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.mode == "L" and image.info["dpi"] == (200, 200)
    assert image.size[0] > 8.5 * 200 and image.size[1] > 11 * 200  # turned, so larger than the page
    assert data == scan_twin(pdf, style=ScanStyle(dpi=200, angle=1.5, seed=3))
    with pytest.raises(ValueError, match="outside 50-600"):
        ScanStyle(dpi=20)


def test_checks_from_a_text_layer_are_prose_lines_in_page_order() -> None:
    text = (
        "Header line 3\n• First we read the page text.\n$ run --x=1 --y=2 a b\n1.2.3 . . . . . 7\n"
        "Then the checks are picked from it,\nand the last line comes here at the end."
    )
    checks = checks_from_text(text)  # the header, the command line and the dot leaders are passed over
    assert checks == [
        {"type": "present", "text": "First we read the page text."},
        {"type": "present", "text": "Then the checks are picked from it,"},
        {"type": "present", "text": "and the last line comes here at"},
        {"type": "order", "before": "First we read the page text.", "after": "and the last line comes here at"},
    ]
    assert all(r.passed for r in run_checks(parse_checks(checks), text))
    assert checks_from_text("one line only") == []


def test_every_generator_draws_one_page_with_known_facts() -> None:
    for page in all_pages():
        assert page.pdf.startswith(b"%PDF-") and page.expected_route in ("blank", "text", "vlm"), page.name
        parse_checks(list(page.checks))
