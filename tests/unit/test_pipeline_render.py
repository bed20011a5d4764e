"""Rendering: PDFs, images and multi-page TIFFs to page images and text layers; bad files to clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pagescribe.errors import InvalidRequest
from pagescribe.pipeline import (
    DEFAULT_MAX_SIDE,
    ConverterUnavailable,
    CorruptDocument,
    EmptyDocument,
    EncryptedDocument,
    UnsupportedDocument,
    parse_page_ranges,
    render_document,
)
from pagescribe.pipeline.render import count_pages
from pdfgen import BLANK_PAGE, IMAGE_PAGE, text_page, twelve_page_pdf, write_pdf, write_png


@pytest.fixture(scope="module")
def twelve(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return twelve_page_pdf(tmp_path_factory.mktemp("pdf") / "twelve.pdf")


def test_every_page_renders_in_order_fitted_to_the_model_input(twelve: Path) -> None:
    pages = list(render_document(twelve))
    assert [p.page for p in pages] == list(range(1, 13))
    assert {p.page_count for p in pages} == {12}
    assert {max(p.image.width, p.image.height) for p in pages} == {DEFAULT_MAX_SIDE}
    assert len({p.image.sha256 for p in pages}) == 12


def test_the_text_layer_holds_the_page_words_and_is_absent_without_text(twelve: Path) -> None:
    pages = {p.page: p for p in render_document(twelve)}
    assert "Reference code PS-0002." in (pages[2].text_layer or "")
    assert "Widget 3" in (pages[3].text_layer or "") and "3.50 EUR" in (pages[3].text_layer or "")
    assert "Describe 4" in (pages[4].text_layer or "")
    assert pages[BLANK_PAGE].text_layer is None
    assert pages[IMAGE_PAGE].text_layer is None


def test_dpi_and_max_side_set_the_pixel_size(twelve: Path) -> None:
    at_72 = next(render_document(twelve, dpi=72))
    at_500 = next(render_document(twelve, max_side=500))
    assert (at_72.image.width, at_72.image.height) == (612, 792)
    assert max(at_500.image.width, at_500.image.height) == 500


def test_selected_pages_only_and_past_the_end_skipped(twelve: Path) -> None:
    assert [p.page for p in render_document(twelve, pages=parse_page_ranges("2-3,11,40"))] == [2, 3, 11]
    with pytest.raises(InvalidRequest, match="none of the requested pages"):
        list(render_document(twelve, pages=[13]))


def test_page_ranges_parse_and_bad_ones_say_how_to_write_them() -> None:
    assert parse_page_ranges("1-3, 9,2") == (1, 2, 3, 9)
    for bad in ("0-2", "5-3", "x", "1-"):
        with pytest.raises(InvalidRequest, match="page range"):
            parse_page_ranges(bad)


def test_an_image_is_one_page_without_text_layer_and_shrunk_to_fit(tmp_path: Path) -> None:
    png = write_png(tmp_path / "big.png", size=(3000, 1500))
    [page] = render_document(png)
    assert (page.page, page.page_count, page.text_layer) == (1, 1, None)
    assert (page.image.width, page.image.height) == (DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE // 2)


def test_a_multi_page_tiff_gives_one_page_per_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (200, 100), colour) for colour in ("red", "green", "blue")]
    tiff = tmp_path / "scan.tiff"
    frames[0].save(tiff, save_all=True, append_images=frames[1:])
    pages = list(render_document(tiff))
    assert [(p.page, p.page_count) for p in pages] == [(1, 3), (2, 3), (3, 3)]
    assert [p.image.rgb[:3] for p in pages] == [b"\xff\x00\x00", b"\x00\x80\x00", b"\x00\x00\xff"]
    assert [p.page for p in render_document(tiff, pages=[2])] == [2]
    assert count_pages(tiff) == 3


def test_bad_documents_raise_errors_that_name_the_file_and_the_cause(tmp_path: Path) -> None:
    encrypted = write_pdf(tmp_path / "locked.pdf", [text_page("Secret", ["x"])], encrypted=True)
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4\nthis is not really a PDF\n")
    broken_png = tmp_path / "broken.png"
    broken_png.write_bytes(write_png(tmp_path / "ok.png").read_bytes()[:60])
    unknown = tmp_path / "notes.xyz"
    unknown.write_text("plain text")
    cases = [
        (encrypted, EncryptedDocument, "encrypted"),
        (empty, EmptyDocument, "empty"),
        (corrupt, CorruptDocument, "not a readable PDF"),
        (broken_png, CorruptDocument, "broken.png"),
        (unknown, UnsupportedDocument, "not a PDF"),
    ]
    for path, error, words in cases:
        with pytest.raises(error, match=words) as info:
            list(render_document(path))
        assert str(path) in info.value.message


def test_an_office_file_without_libreoffice_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(b"PK\x03\x04not-really-a-deck")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ConverterUnavailable, match="libreoffice-impress"):
        list(render_document(deck))
