"""Input discovery: folders, globs and files become sources with a type and a unique output name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagescribe.errors import InvalidRequest
from pagescribe.pipeline.sources import discover
from pdfgen import text_page, write_pdf, write_png


def make_tree(root: Path) -> None:
    write_pdf(root / "report.pdf", [text_page("Report", ["x"])])
    write_pdf(root / "sub" / "deep" / "notes.pdf", [text_page("Notes", ["y"])])
    write_png(root / "sub" / "scan.png")
    (root / "readme.txt").write_text("not a document")
    write_pdf(root / ".hidden" / "secret.pdf", [text_page("Hidden", ["z"])])
    (root / "sub" / "deck.pptx").write_bytes(b"PK\x03\x04rest-of-a-zip")


def test_a_folder_is_searched_recursively_for_known_document_types(tmp_path: Path) -> None:
    make_tree(tmp_path)
    found = {s.name: s.kind for s in discover([tmp_path])}
    assert found == {"report": "pdf", "sub/deep/notes": "pdf", "sub/scan": "image", "sub/deck": "office"}


def test_a_glob_matches_files_and_names_them_relative_to_its_fixed_part(tmp_path: Path) -> None:
    make_tree(tmp_path)
    found = discover([f"{tmp_path}/**/*.pdf"])
    assert sorted(s.name for s in found) == ["report", "sub/deep/notes"]


def test_content_decides_the_type_and_a_named_unknown_file_is_kept(tmp_path: Path) -> None:
    disguised = write_pdf(tmp_path / "photo.png", [text_page("A PDF", ["really"])])
    unknown = tmp_path / "data.bin"
    unknown.write_bytes(b"\x00\x01\x02")
    found = discover([disguised, unknown])
    assert [(s.name, s.kind) for s in found] == [("photo", "pdf"), ("data", None)]


def test_clashing_names_keep_their_suffix_and_reserved_names_too(tmp_path: Path) -> None:
    write_pdf(tmp_path / "a.pdf", [text_page("A", ["1"])])
    write_png(tmp_path / "a.png")
    write_pdf(tmp_path / "chunks.pdf", [text_page("C", ["2"])])
    found = discover([tmp_path], reserved={"chunks"})
    assert sorted(s.name for s in found) == ["a.pdf", "a.png", "chunks.pdf"]


def test_the_same_file_given_twice_is_converted_once(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("A", ["1"])])
    assert len(discover([pdf, tmp_path, str(pdf)])) == 1


def test_an_input_that_matches_nothing_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"missing\.pdf"):
        discover([tmp_path / "missing.pdf"])
    with pytest.raises(InvalidRequest, match=r"\*\.tiff"):
        discover([f"{tmp_path}/*.tiff"])
