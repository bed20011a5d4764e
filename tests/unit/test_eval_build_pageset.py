"""scripts/build_pageset.py: generated pages always; a public PDF's labelled pages, with scanned twins, when it is
installed; a note, not a failure, when it is not (or is another edition than the labels were made for)."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pypdfium2 as pdfium
import pytest

from pagescribe.eval.pageset import load_pageset
from pagescribe.eval.synthpages import single_column, two_column

pytest.importorskip("reportlab")
SCRIPT = Path(__file__).parents[2] / "scripts" / "build_pageset.py"


@pytest.fixture
def builder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_pageset", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "build_pageset", module)
    spec.loader.exec_module(module)
    doc = pdfium.PdfDocument.new()
    for page in (single_column(), two_column()):
        doc.import_pages(pdfium.PdfDocument(page.pdf))
    doc.save(tmp_path / "manual.pdf")
    with gzip.open(tmp_path / "manual.pdf.gz", "wb") as fh:
        fh.write((tmp_path / "manual.pdf").read_bytes())
    sources = {
        "manual": module.Source("manual", (str(tmp_path / "manual.pdf.gz"),), "manual-doc", 2),
        "absent": module.Source("absent", (str(tmp_path / "nowhere.pdf"),), "absent-doc", 9),
    }
    monkeypatch.setattr(module, "SOURCES", sources)
    monkeypatch.setattr(module, "PAGES", [
        ("manual", 2, "two-column", "text", 150, True, "two columns"),
        ("absent", 1, "born-digital", "text", 0, True, "not installed"),
    ])  # fmt: skip
    return module


def test_installed_sources_give_labelled_pages_and_twins_and_absent_ones_a_note(
    builder: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert builder.main(["--out", str(tmp_path / "set"), "--quick"]) == 0
    captured = capsys.readouterr()
    assert "note: skipping absent: not installed (apt-get install absent-doc)" in captured.err
    pages = {p.id: p for p in load_pageset(tmp_path / "set").pages}
    page = pages["manual-p2"]
    assert (page.file, page.page, page.expected_route) == (tmp_path / "set" / "sources" / "manual.pdf", 2, "text")
    assert page.reference is not None and page.reference.startswith("Field Notes on River Birds")
    assert [c.type for c in page.checks] == ["present", "present", "present", "order"]
    twin = pages["manual-p2-scan150"]
    assert (twin.category, twin.expected_route, twin.reference, twin.page) == ("scan", "ocr", page.reference, None)
    assert twin.file.suffix == ".jpg"
    assert {p.category for p in pages.values()} >= {"chart", "diagram", "blank", "near-blank", "table"}
    assert "wrote" in captured.out and "pages" in captured.out


def test_a_source_of_another_edition_is_skipped(builder: ModuleType, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    builder.SOURCES["manual"] = builder.Source("manual", (str(tmp_path / "manual.pdf"),), "manual-doc", 311)
    builder.main(["--out", str(tmp_path / "set"), "--quick"])
    assert "note: skipping manual: " in capsys.readouterr().err
    assert not any(p.id.startswith("manual") for p in load_pageset(tmp_path / "set").pages)
