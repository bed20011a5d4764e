"""Office documents through LibreOffice: a PPTX made with python-pptx, a DOCX made by LibreOffice itself.

Skipped, with the reason, where LibreOffice (Debian: libreoffice-impress, libreoffice-writer) or python-pptx is
not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pagescribe.engine.fake import FakeEngine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.pipeline import ConvertOptions, convert, render_document
from pagescribe.pipeline.render import count_pages
from pagescribe.types import SamplingParams

needs_soffice = pytest.mark.skipif(
    shutil.which("soffice") is None,
    reason="LibreOffice is not installed (apt-get install libreoffice-impress libreoffice-writer)",
)
SLIDES = [("Quarterly results", "Revenue grew by 12 percent"), ("Process flow", "Ingest, render, describe")]


def make_pptx(path: Path) -> Path:
    pptx = pytest.importorskip("pptx", reason="python-pptx is not installed (a dev dependency)")
    deck = pptx.Presentation()
    for title, body in SLIDES:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.save(str(path))
    return path


@needs_soffice
def test_a_pptx_made_in_the_test_converts_slide_by_slide(tiny_engine: LlamaCppEngine, tmp_path: Path) -> None:
    deck = make_pptx(tmp_path / "deck.pptx")
    pages = list(render_document(deck))
    assert [(p.page, p.page_count) for p in pages] == [(1, 2), (2, 2)]
    for page, (title, body) in zip(pages, SLIDES, strict=True):
        assert title in (page.text_layer or "") and body in (page.text_layer or "")
        assert page.image.width > page.image.height  # slides are landscape
    options = ConvertOptions(route="vlm", params=SamplingParams(max_tokens=4, seed=0))
    records = list(convert([deck], out_dir=tmp_path / "out", backend=tiny_engine, options=options))
    rows = [json.loads(line) for line in (tmp_path / "out" / "deck.jsonl").read_text().splitlines()]
    assert [r["page"] for r in rows] == [1, 2] and {r["source"] for r in rows} == {str(deck)}
    assert all(r["status"] in ("ok", "failed") and r["usage"]["completion_tokens"] > 0 for r in rows)
    assert len(records) == 2


@needs_soffice
def test_a_docx_converts_and_a_broken_one_is_an_error_record(tmp_path: Path) -> None:
    html = tmp_path / "memo.html"
    html.write_text("<html><body><h1>Quarterly memo</h1><p>Revenue grew by 12 percent.</p></body></html>")
    subprocess.run(
        ["soffice", "--headless", "--convert-to", "docx:MS Word 2007 XML", "--outdir", str(tmp_path), str(html)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert count_pages(tmp_path / "memo.docx") == 1
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    engine = FakeEngine()
    records = list(convert([tmp_path / "memo.docx", broken], out_dir=tmp_path / "out", backend=engine,
                           options=ConvertOptions(route="vlm", anchor="text-layer")))  # fmt: skip
    by_doc = {r.document: r for r in records}
    assert by_doc["memo"].status == "ok" and by_doc["memo"].page == 1
    assert "Revenue grew by 12 percent." in engine.requests[0].messages[0].text
    assert (by_doc["broken"].status, by_doc["broken"].reason) == ("error", "corrupt")
    assert "broken.docx" in (by_doc["broken"].error or "")
