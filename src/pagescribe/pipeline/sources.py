"""Input discovery: files, folders (recursive) and globs become an ordered list of sources with unique names.

A source's type comes from its first bytes (a PDF called ``scan.png`` is still a PDF), then from its suffix.
Each source gets an output name, unique within the run: its path relative to the folder or glob it came from,
without the suffix (``reports/q3``); when two sources would share a name the suffix is kept (``q3.pdf``).
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pagescribe.errors import InvalidRequest

DocumentKind = Literal["pdf", "image", "office"]

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
OFFICE_SUFFIXES = frozenset({".pptx", ".ppt", ".odp", ".docx", ".doc", ".odt", ".rtf", ".xlsx", ".xls", ".ods"})
KNOWN_SUFFIXES = PDF_SUFFIXES | IMAGE_SUFFIXES | OFFICE_SUFFIXES

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Source:
    """One input document. ``kind`` is None when the file is of no type pagescribe reads."""

    path: Path
    kind: DocumentKind | None
    name: str


def sniff(path: Path) -> DocumentKind | None:
    """The document type of ``path`` from its leading bytes, else from its suffix (so for empty files too)."""
    with path.open("rb") as fh:
        head = fh.read(2048)
    suffix = path.suffix.lower()
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head.startswith((_ZIP_MAGIC, _OLE2_MAGIC)) and suffix in OFFICE_SUFFIXES:
        return "office"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in OFFICE_SUFFIXES:
        return "office"
    return None


def discover(inputs: Sequence[str | Path], *, reserved: Iterable[str] = ()) -> list[Source]:
    """Expand files, folders and globs into sources, in the order given (folders and globs sorted).

    A file named explicitly is always taken (an unknown type becomes an error record later); inside folders
    only files with a known suffix are taken, hidden files and folders are skipped. Raises ``InvalidRequest``
    when an input matches nothing. A name in ``reserved`` (an output file of the run) keeps its suffix.
    """
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        matches = list(_expand(str(item)))
        if not matches:
            raise InvalidRequest(f"{item}: no such file or folder, and no file matches it", param="inputs")
        found.extend(matches)
    seen: set[Path] = set()
    unique: list[tuple[Path, Path]] = []
    for path, root in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((path, root))
    return _name_sources([(path, root, sniff(path)) for path, root in unique], frozenset(reserved))


def _expand(item: str) -> Iterable[tuple[Path, Path]]:
    """(file, root) pairs for one input; ``root`` is what the output name is made relative to."""
    path = Path(item)
    if path.is_dir():
        yield from ((f, path) for f in _walk(path))
    elif path.is_file():
        yield path, path.parent
    elif _GLOB_CHARS & set(item):
        root = _glob_root(item)
        for match in sorted(glob.glob(item, recursive=True)):
            hit = Path(match)
            if hit.is_dir():
                yield from ((f, hit) for f in _walk(hit))
            elif hit.is_file():
                yield hit, root


def _walk(folder: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in KNOWN_SUFFIXES:
                yield Path(dirpath) / name


def _glob_root(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _name_sources(items: list[tuple[Path, Path, DocumentKind | None]], reserved: frozenset[str]) -> list[Source]:
    sources = [Source(path, kind, _relative(path, root).with_suffix("").as_posix()) for path, root, kind in items]
    clashes = Counter(s.name for s in sources)
    sources = [
        replace(s, name=_relative(s.path, root).as_posix()) if clashes[s.name] > 1 or s.name in reserved else s
        for s, (_, root, _) in zip(sources, items, strict=True)
    ]
    clashes = Counter(s.name for s in sources)
    return [replace(s, name=f"{s.name}-{_short_hash(s.path)}") if clashes[s.name] > 1 else s for s in sources]


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return Path(path.name)


def _short_hash(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]


def file_sha256(path: Path) -> str | None:
    """The file's SHA-256 (hex), or ``None`` when it cannot be read."""
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None
