"""The page set: a folder of page files and ``pageset.jsonl``, one line per page to score (docs/eval.md).

Each line names the page (``id``, ``file``, ``page`` of a PDF), what it is (``category``), the route a router
should choose for it (``expected_route``), the text it holds (``reference`` inline, or ``reference_file``) and
the facts a transcription must get right (``checks``). A malformed line is a ``PageSetError`` naming the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pagescribe.errors import InvalidRequest
from pagescribe.eval.checks import Check, CheckSyntaxError, parse_checks
from pagescribe.pipeline.sources import IMAGE_SUFFIXES, PDF_SUFFIXES

PAGESET_FILE = "pageset.jsonl"
Route = Literal["blank", "text", "ocr", "vlm"]
ROUTES: tuple[Route, ...] = ("blank", "text", "ocr", "vlm")
#: An id names the page's file in the work folder, so it is a plain file name.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REQUIRED = {"id", "file", "category"}
_OPTIONAL = {"page", "expected_route", "reference", "reference_file", "checks"}


class PageSetError(InvalidRequest):
    """A page set that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class PageSpec:
    """One page to score. ``file`` is resolved against the page set's folder; ``reference`` is the text itself
    (read from ``reference_file`` when the line names one)."""

    id: str
    file: Path
    category: str
    page: int | None = None
    expected_route: Route | None = None
    reference: str | None = None
    checks: tuple[Check, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class PageSet:
    """The pages of ``pageset.jsonl`` in ``root``, in file order."""

    root: Path
    pages: tuple[PageSpec, ...]

    @property
    def categories(self) -> list[str]:
        """The categories in the order they first appear."""
        return list(dict.fromkeys(p.category for p in self.pages))


def load_pageset(path: str | Path) -> PageSet:
    """Read a page set from its folder (or its ``pageset.jsonl``); every line is checked before any is used."""
    path = Path(path)
    index = path / PAGESET_FILE if path.is_dir() else path
    if not index.is_file() or index.suffix != ".jsonl":
        raise PageSetError(f"{path}: no {PAGESET_FILE} here (a page set is a folder with one; see docs/eval.md)")
    root = index.parent
    try:
        text = index.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PageSetError(f"{index}: cannot read it as UTF-8 text ({exc})") from None
    pages: list[PageSpec] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            spec = _parse_line(line, root, number)
        except (CheckSyntaxError, ValueError) as exc:
            raise PageSetError(f"{index} line {number}: {exc}") from None
        if spec.id in seen:
            raise PageSetError(f"{index} line {number}: id {spec.id!r} is already used on line {seen[spec.id]}")
        seen[spec.id] = number
        pages.append(spec)
    if not pages:
        raise PageSetError(f"{index}: no pages (one JSON object per line)")
    return PageSet(root=root, pages=tuple(pages))


def _parse_line(line: str, root: Path, number: int) -> PageSpec:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("each line is a JSON object")
    if missing := sorted(_REQUIRED - data.keys()):
        raise ValueError(f"missing {', '.join(map(repr, missing))}")
    if unknown := sorted(data.keys() - _REQUIRED - _OPTIONAL):
        known = ", ".join(sorted(_REQUIRED | _OPTIONAL))
        raise ValueError(f"unknown field {', '.join(map(repr, unknown))} (the fields are {known})")
    page_id = data["id"]
    if not isinstance(page_id, str) or not _ID.match(page_id):
        raise ValueError(f"id {page_id!r} must be letters, digits, '.', '_' or '-' (it names a file)")
    category = data["category"]
    if not isinstance(category, str) or not category.strip():
        raise ValueError("'category' is a non-empty text")
    file = _file(root, data["file"])
    return PageSpec(
        id=page_id,
        file=file,
        category=category.strip(),
        page=_page(data.get("page"), file),
        expected_route=_route(data.get("expected_route")),
        reference=_reference(root, data),
        checks=parse_checks(data.get("checks", [])),
        line=number,
    )


def _file(root: Path, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError("'file' is a path relative to the page set folder")
    path = root / value
    if not path.is_file():
        raise ValueError(f"file {value!r} does not exist in {root}")
    if path.suffix.lower() not in PDF_SUFFIXES | IMAGE_SUFFIXES:
        raise ValueError(f"file {value!r} is not a PDF or an image (PNG, JPEG, TIFF, ...)")
    return path


def _page(value: Any, file: Path) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"'page' is a page number, 1 or more (not {value!r})")
    if file.suffix.lower() not in PDF_SUFFIXES:
        raise ValueError("'page' applies to PDF files only")
    return value


def _route(value: Any) -> Route | None:
    if value is None:
        return None
    for route in ROUTES:
        if value == route:
            return route
    raise ValueError(f"expected_route {value!r} is not one of {', '.join(ROUTES)}")


def _reference(root: Path, data: Mapping[str, Any]) -> str | None:
    inline, file = data.get("reference"), data.get("reference_file")
    if inline is not None and file is not None:
        raise ValueError("give 'reference' (the text) or 'reference_file' (a path), not both")
    if inline is not None:
        if not isinstance(inline, str):
            raise ValueError("'reference' is the page's text (use 'reference_file' for a path)")
        return inline
    if file is None:
        return None
    if not isinstance(file, str) or not (root / file).is_file():
        raise ValueError(f"reference_file {file!r} does not exist in {root}")
    return (root / file).read_text(encoding="utf-8")


def write_pageset(root: Path, lines: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``pageset.jsonl`` into ``root`` (the page files are the caller's); returns its path."""
    root.mkdir(parents=True, exist_ok=True)
    index = root / PAGESET_FILE
    index.write_text("".join(json.dumps(dict(line), ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return index
