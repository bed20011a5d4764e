"""Reading a page set: a good one loads; a malformed line is an error that names the file, the line and the fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pagescribe.eval.pageset import PAGESET_FILE, PageSetError, load_pageset


def make_set(tmp_path: Path, *lines: object) -> Path:
    (tmp_path / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "ref.txt").write_text("the reference text\n")
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    (tmp_path / PAGESET_FILE).write_text(text + "\n")
    return tmp_path


GOOD = {"id": "p1", "file": "p1.png", "category": "scan", "expected_route": "ocr", "reference_file": "ref.txt",
        "checks": [{"type": "present", "text": "reference"}]}  # fmt: skip


def test_a_page_set_loads_with_its_references_and_checks(tmp_path: Path) -> None:
    second = {"id": "d3", "file": "doc.pdf", "page": 3, "category": "born-digital", "reference": "inline"}
    pageset = load_pageset(make_set(tmp_path, GOOD, "", second))
    first, third = pageset.pages
    assert (first.id, first.file, first.reference, first.expected_route) == (
        "p1", tmp_path / "p1.png", "the reference text\n", "ocr"
    )
    assert first.checks[0].describe() == "present 'reference'"
    assert (third.page, third.reference, third.expected_route, third.line) == (3, "inline", None, 3)
    assert pageset.categories == ["scan", "born-digital"]
    assert load_pageset(tmp_path / PAGESET_FILE).pages == pageset.pages


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("[1, 2]", "each line is a JSON object"),
        ({"id": "x", "file": "p1.png"}, "missing 'category'"),
        ({**GOOD, "route": "ocr"}, "unknown field 'route' (the fields are category, checks, expected_route, file, "
                                   "id, page, reference, reference_file)"),
        ({**GOOD, "id": "a/b"}, "id 'a/b' must be letters, digits, '.', '_' or '-' (it names a file)"),
        ({**GOOD, "file": "gone.png"}, "file 'gone.png' does not exist in {root}"),
        ({**GOOD, "file": "ref.txt"}, "file 'ref.txt' is not a PDF or an image (PNG, JPEG, TIFF, ...)"),
        ({**GOOD, "page": 2}, "'page' applies to PDF files only"),
        ({**GOOD, "file": "doc.pdf", "page": 0}, "'page' is a page number, 1 or more (not 0)"),
        ({**GOOD, "expected_route": "model"}, "expected_route 'model' is not one of blank, text, ocr, vlm"),
        ({**GOOD, "reference": "x"}, "give 'reference' (the text) or 'reference_file' (a path), not both"),
        ({**GOOD, "checks": [{"type": "order", "before": "a"}]}, "checks[0]: a order check needs 'after'"),
    ],
)
def test_a_malformed_line_is_named(tmp_path: Path, line: object, message: str) -> None:
    root = make_set(tmp_path, {**GOOD, "id": "ok"}, line)
    with pytest.raises(PageSetError) as info:
        load_pageset(root)
    assert info.value.message == f"{root / PAGESET_FILE} line 2: {message.format(root=root)}"


def test_ids_are_unique_and_a_set_has_pages(tmp_path: Path) -> None:
    with pytest.raises(PageSetError, match=r"line 2: id 'p1' is already used on line 1$"):
        load_pageset(make_set(tmp_path, GOOD, GOOD))
    with pytest.raises(PageSetError, match=r"pageset.jsonl: no pages"):
        load_pageset(make_set(tmp_path, ""))
    with pytest.raises(PageSetError, match=r"no pageset.jsonl here"):
        load_pageset(tmp_path / "p1.png")
