"""`pagescribe eval --backend ...` runs the real pipeline over a page set (the scripted engine stands in for the
model): the router's choices are scored against the expected routes, and a backend without a model says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import pagescribe.client.client
from pagescribe.cli import main
from pagescribe.engine.fake import FakeEngine
from pagescribe.eval.backends import layout_pages
from pagescribe.eval.pageset import PageSetError, load_pageset, write_pageset
from pagescribe.eval.synthpages import bar_chart, single_column, write_synthetic

pytest.importorskip("reportlab")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine(reply="Metal output by mine, 2024 (kilotonnes): Copper 12.5, Zinc 30.2, Nickel 41.7, Tin 18.4")
    monkeypatch.setattr(pagescribe.client.client, "load_engine", lambda *args, **kwargs: fake)
    return fake


@pytest.fixture
def pageset(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    write_pageset(root, write_synthetic(root, [single_column(), bar_chart()], scans=()))
    return root


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["eval", *map(str, args), "--progress", "quiet"])


def test_auto_keeps_the_text_page_from_the_model_and_sends_it_the_chart(
    engine: FakeEngine, pageset: Path, tmp_path: Path
) -> None:
    result = run(pageset, "--backend", "auto", "--json", tmp_path / "auto.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "auto.json").read_text())
    pages = {p["id"]: p for p in data["pages"]}
    assert pages["synth-single-column"]["route"] == "text" and pages["synth-single-column"]["word_recall"] == 1.0
    assert pages["synth-bar-chart"]["route"] == "vlm" and pages["synth-bar-chart"]["checks_passed"] == 5
    assert len(engine.requests) == 1
    assert data["routing"]["recall"] == {"text": 1.0, "vlm": 1.0} and data["routing"]["avoided_model"] == 0.5
    config = data["config"]
    assert (config["route"], config["anchor"], config["model"]) == ("auto", "auto", "fake-model")
    assert "50% of pages avoided the model" in result.output


def test_vlm_sends_every_page_to_the_model_without_an_anchor(engine: FakeEngine, pageset: Path, tmp_path: Path) -> None:
    result = run(pageset, "--backend", "vlm", "--max-tokens", "64", "--json", tmp_path / "vlm.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "vlm.json").read_text())
    assert [p["route"] for p in data["pages"]] == ["vlm", "vlm"] and len(engine.requests) == 2
    assert (data["config"]["anchor"], data["config"]["max_tokens"]) == ("none", 64)
    text_page = data["pages"][0]
    assert text_page["word_recall"] < 0.2 and text_page["checks_passed"] == 1  # only "absent" passes


def test_the_text_layer_backend_needs_no_model_and_work_keeps_the_conversion(pageset: Path, tmp_path: Path) -> None:
    result = run(pageset, "--backend", "text-layer", "--json", tmp_path / "t.json", "--work", tmp_path / "work")
    assert result.exit_code == 0, result.output
    pages = {p["id"]: p for p in json.loads((tmp_path / "t.json").read_text())["pages"]}
    assert pages["synth-single-column"]["status"] == "ok" and pages["synth-single-column"]["route"] == "text"
    assert pages["synth-bar-chart"]["route"] == "text"  # forced: its text layer, which loses the bars' values
    assert pages["synth-bar-chart"]["checks_passed"] == 1
    assert sorted((tmp_path / "work" / "pages").iterdir()) == [
        tmp_path / "work" / "pages" / "synth-bar-chart.pdf", tmp_path / "work" / "pages" / "synth-single-column.pdf"
    ]  # fmt: skip
    assert (tmp_path / "work" / "out" / "summary.json").is_file()


def test_a_page_of_a_longer_pdf_is_cut_out_and_a_missing_page_number_is_named(tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for page in (single_column(), bar_chart()):
        part = pdfium.PdfDocument(page.pdf)
        doc.import_pages(part)
    doc.save(tmp_path / "two.pdf")
    write_pageset(tmp_path, [{"id": "second", "file": "two.pdf", "page": 2, "category": "chart"}])
    (laid,) = layout_pages(load_pageset(tmp_path), tmp_path / "pages")
    assert laid.name == "second.pdf" and len(pdfium.PdfDocument(laid)) == 1
    assert "Metal output" in pdfium.PdfDocument(laid)[0].get_textpage().get_text_range()
    write_pageset(tmp_path, [{"id": "which", "file": "two.pdf", "category": "chart"}])
    with pytest.raises(PageSetError, match=r"line 1 \(which\): two.pdf has 2 pages: give 'page'"):
        layout_pages(load_pageset(tmp_path), tmp_path / "pages")
