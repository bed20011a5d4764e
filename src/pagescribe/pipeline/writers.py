"""Atomic output files: each is written to a temporary file beside it and renamed over the old one.

A reader, or a run killed at any instant, sees the old file or the new one, never half of either.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pagescribe.errors import InvalidRequest
from pagescribe.pipeline.assemble import document_markdown
from pagescribe.pipeline.records import PageRecord

_TEMP_SUFFIX = ".tmp"
# What atomic_write_text's mkstemp names look like (".NAME.jsonl.k3j9_x2a.tmp"), and nothing else.
_OUR_TEMP_FILE = re.compile(r"^\..+\.(jsonl|md|json)\.[a-z0-9_]{8}\.tmp$")
# mkstemp creates files readable by the owner only; outputs get the permissions open() would give them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically, creating parent folders as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
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


@contextmanager
def exclusive_output(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir`` for one run, then clear what a run killed mid-write left there.

    Two runs writing into one folder would overwrite each other's ``chunks.jsonl`` and ``summary.json``, so
    a second one is refused while the first holds the folder's ``flock`` (the kernel releases it however
    the holder ends, ``kill -9`` included). Holding it, no other run can be writing, so every temporary file
    of ``atomic_write_text`` found under ``out_dir`` is a leftover of a killed run and is removed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    # The lock is on the folder itself, so the outputs stay the only files in it.
    folder = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidRequest(
                f"{out_dir}: another pagescribe run is writing to this folder; wait for it or choose another",
                param="out_dir",
            ) from None
        for leftover in out_dir.rglob(f".*{_TEMP_SUFFIX}"):
            if _OUR_TEMP_FILE.match(leftover.name) and leftover.is_file():
                leftover.unlink(missing_ok=True)
        yield
    finally:
        os.close(folder)  # closing the descriptor releases the lock


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
