"""Atomic output files: each is written to a temporary file beside it and renamed over the old one.

A reader, or a run killed at any instant, sees the old file or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pagescribe.pipeline.assemble import document_markdown
from pagescribe.pipeline.records import PageRecord

# mkstemp creates files readable by the owner only; outputs get the permissions open() would give them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically, creating parent folders as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            # The rename must not reach the disk before the data does, or a crash could leave an empty file.
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_line(data: Mapping[str, Any]) -> str:
    """One compact JSON object and a newline; non-ASCII text kept as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write ``rows`` as JSON Lines, atomically."""
    atomic_write_text(path, "".join(json_line(row) for row in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON object in a JSON Lines file (blank lines skipped)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ---------------------------------------------------------------------------------------------- run outputs

CHUNKS_FILE = "chunks.jsonl"
SUMMARY_FILE = "summary.json"
#: Document names that would overwrite a run-wide output file; such documents keep their suffix.
RESERVED_NAMES = frozenset({Path(CHUNKS_FILE).stem})


def document_paths(out_dir: Path, name: str) -> tuple[Path, Path]:
    """``NAME.jsonl`` and ``NAME.md`` for a document."""
    return out_dir / f"{name}.jsonl", out_dir / f"{name}.md"


def write_document(out_dir: Path, name: str, records: Iterable[PageRecord]) -> None:
    """Write a document's records (page order, error last) and its Markdown (when it has pages)."""
    ordered = sorted(records, key=page_order)
    jsonl, md = document_paths(out_dir, name)
    write_jsonl(jsonl, (r.to_json() for r in ordered))
    if any(r.page is not None for r in ordered):
        atomic_write_text(md, document_markdown(name, ordered))


def page_order(record: PageRecord) -> tuple[int, int]:
    """Sort key: pages by number, then records without a page (document errors)."""
    return (0, record.page) if record.page is not None else (1, 0)
