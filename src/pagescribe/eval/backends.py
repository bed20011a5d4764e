"""Put a backend through a page set: run the real pipeline over the set's pages, or read what a backend (any
tool) already wrote, and give back each page's output by page id.

The pages are first laid out one file per page, named by id, in a work folder (a PDF page is cut out into a
one-page PDF that keeps its text layer), so a ``Conversion`` over that folder names each record by its page id.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pypdfium2 as pdfium

from pagescribe.client import Client
from pagescribe.errors import InvalidRequest
from pagescribe.eval.metrics import PageOutput
from pagescribe.eval.pageset import PageSet, PageSetError, PageSpec
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.progress import ProgressSink
from pagescribe.pipeline.render import count_pages
from pagescribe.pipeline.runner import Conversion
from pagescribe.pipeline.writers import CHUNKS_FILE, SUMMARY_FILE

Backend = Literal["text-layer", "ocr", "auto", "vlm"]
BACKENDS: tuple[Backend, ...] = ("text-layer", "ocr", "auto", "vlm")
#: The backends that need a model (``--model``, ``--url`` or ``--endpoint``).
MODEL_BACKENDS = frozenset({"auto", "vlm"})
#: What each backend sets on top of the caller's options: the route, and its anchor (None: the route's default,
#: ``auto`` for ``auto``); ``vlm`` is the model alone, shown no text layer nor OCR text.
_ROUTE_OPTIONS: Mapping[Backend, Mapping[str, Any]] = {
    "text-layer": {"route": "text", "anchor": None},
    "ocr": {"route": "ocr", "anchor": None},
    "auto": {"route": "auto", "anchor": None},
    "vlm": {"route": "vlm", "anchor": "none"},
}


@dataclass(frozen=True, slots=True)
class BackendRun:
    """The outputs by page id, the conversion's wall time, and records that matched no page (from a folder)."""

    outputs: Mapping[str, PageOutput]
    elapsed_s: float | None
    unmatched: int = 0


def backend_options(backend: Backend, options: ConvertOptions) -> ConvertOptions:
    """``options`` with the backend's route, redoing every page (a timing from the resume cache means nothing)."""
    return dataclasses.replace(options, force=True, **_ROUTE_OPTIONS[backend])


def run_backend(
    pageset: PageSet,
    backend: Backend,
    *,
    work_dir: Path,
    client: Client | None = None,
    options: ConvertOptions | None = None,
    progress: ProgressSink | None = None,
) -> BackendRun:
    """Convert every page of the set with ``backend`` into ``work_dir`` (``pages/`` in, ``out/`` out; both
    replaced, so the outputs are this run's alone)."""
    if backend in MODEL_BACKENDS and client is None:
        raise InvalidRequest(f"the {backend} backend needs a model: give --model, --url or --endpoint", param="model")
    pages_dir = work_dir / "pages"
    layout_pages(pageset, pages_dir)
    if (work_dir / "out").exists():
        shutil.rmtree(work_dir / "out")
    conversion = Conversion(
        [pages_dir],
        out_dir=work_dir / "out",
        backend=client,
        options=backend_options(backend, options or ConvertOptions()),
        progress=progress,
    )
    outputs = {record.document: page_output(record.document, record.to_json()) for record in conversion}
    elapsed = conversion.summary.elapsed_s if conversion.summary is not None else None
    return BackendRun(outputs=outputs, elapsed_s=elapsed)


def layout_pages(pageset: PageSet, folder: Path) -> list[Path]:
    """One file per page in ``folder``, named ``ID.SUFFIX``: the page's file copied, or its PDF page cut out."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return [_lay_out(spec, folder) for spec in pageset.pages]


def _lay_out(spec: PageSpec, folder: Path) -> Path:
    dest = folder / f"{spec.id}{spec.file.suffix.lower()}"
    if spec.file.suffix.lower() != ".pdf":
        shutil.copyfile(spec.file, dest)
        return dest
    count = count_pages(spec.file, kind="pdf")
    if spec.page is None and count == 1:
        shutil.copyfile(spec.file, dest)
        return dest
    if spec.page is None or spec.page > count:
        wanted = "give 'page'" if spec.page is None else f"it has no page {spec.page}"
        raise PageSetError(f"line {spec.line} ({spec.id}): {spec.file.name} has {count} pages: {wanted}")
    source = pdfium.PdfDocument(spec.file)
    try:
        single = pdfium.PdfDocument.new()
        single.import_pages(source, [spec.page - 1])
        single.save(dest)
        single.close()
    finally:
        source.close()
    return dest


def page_output(page_id: str, record: Mapping[str, Any]) -> PageOutput:
    """What a page record (``PageRecord.to_json()``, or a line of a convert output) says about its page."""
    timings = record.get("timings")
    ms = [v for k, v in timings.items() if k.endswith("_ms") and isinstance(v, int | float)] if isinstance(
        timings, dict
    ) else []
    status = str(record.get("status", "ok"))
    return PageOutput(
        id=page_id,
        text=str(record.get("text") or ""),
        status=status,
        route=_text_or_none(record.get("route")),
        route_reason=_text_or_none(record.get("route_reason")),
        reason=_text_or_none(record.get("error") or record.get("reason")) if status != "ok" else None,
        seconds=sum(ms) / 1000.0 if ms else None,
    )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ------------------------------------------------------------------------------------------- from a folder


def read_outputs(path: Path, pageset: PageSet) -> BackendRun:
    """The outputs a folder (or one JSONL file) holds: ``convert`` records (``NAME.jsonl``) or lines of
    ``{"id": ..., "text": ...}`` from any other tool. A convert record is matched to its page by id (the eval's own
    work folder), else by the page's file name without suffix and page number (``convert`` run on the set's
    folder). The wall time comes from the folder's ``summary.json`` when it has one."""
    files = [path] if path.is_file() else sorted(_jsonl_files(path))
    if not files:
        raise InvalidRequest(f"{path}: no JSONL files (convert's NAME.jsonl, or lines of id and text)", param="records")
    lookup = _lookup(pageset)
    outputs: dict[str, PageOutput] = {}
    unmatched = 0
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            output = _output_of(_json_object(file, number, line), lookup)
            if output is None:
                unmatched += 1
            else:
                outputs[output.id] = output
    return BackendRun(outputs=outputs, elapsed_s=_elapsed(path), unmatched=unmatched)


def _jsonl_files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        raise InvalidRequest(f"{folder}: no such folder or file", param="records")
    for file in folder.rglob("*.jsonl"):
        parts = file.relative_to(folder).parts
        if file.name != CHUNKS_FILE and not any(p.startswith(".") for p in parts):
            yield file


def _json_object(file: Path, number: int, line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{file} line {number}: not JSON ({exc.msg})", param="records") from None
    if not isinstance(data, dict) or not isinstance(data.get("text", ""), str):
        raise InvalidRequest(f"{file} line {number}: each line is an object with a text", param="records")
    return data


def _lookup(pageset: PageSet) -> dict[tuple[str, int], str]:
    """(document name, page) -> page id: by id, and by the page's file path relative to the set, without and
    with its suffix (the names ``convert`` gives documents in a folder)."""
    found: dict[tuple[str, int], str] = {}
    for spec in pageset.pages:
        relative = spec.file.relative_to(pageset.root) if spec.file.is_relative_to(pageset.root) else spec.file
        for name in (relative.with_suffix("").as_posix(), relative.as_posix()):
            found.setdefault((name, spec.page or 1), spec.id)
    for spec in pageset.pages:
        found[(spec.id, 1)] = spec.id
    return found


def _output_of(data: Mapping[str, Any], lookup: Mapping[tuple[str, int], str]) -> PageOutput | None:
    if "id" in data:
        return page_output(str(data["id"]), data)
    document, page = data.get("document"), data.get("page")
    page_id = lookup.get((str(document), page if isinstance(page, int) else 1))
    return None if page_id is None else page_output(page_id, data)


def _elapsed(path: Path) -> float | None:
    summary = (path if path.is_dir() else path.parent) / SUMMARY_FILE
    try:
        value = json.loads(summary.read_text(encoding="utf-8")).get("elapsed_s")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
