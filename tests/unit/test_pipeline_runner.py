"""`convert` end to end with the scripted engine: outputs, error records, resume, concurrency, progress."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from pagescribe.client import Client
from pagescribe.client.local import LocalTransport
from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline import Conversion, ConvertOptions, PageRecord, convert
from pagescribe.pipeline.progress import BarProgress, JsonlProgress
from pagescribe.pipeline.writers import read_jsonl
from pagescribe.prompts import Prompt
from pagescribe.types import GenerationRequest, GenerationResult
from pdfgen import BLANK_PAGE, text_page, twelve_page_pdf, write_pdf, write_png


@pytest.fixture(scope="module")
def twelve(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return twelve_page_pdf(tmp_path_factory.mktemp("docs") / "report.pdf")


def run(paths: list[Path], out: Path, engine: FakeEngine, **options: object) -> Conversion:
    conversion = Conversion(paths, out_dir=out, backend=engine, options=ConvertOptions(**{"route": "vlm", **options}))  # type: ignore[arg-type]
    list(conversion)
    return conversion


def outputs(folder: Path) -> dict[str, object]:
    """The run's outputs, less what is measured afresh by each run (timings)."""
    records = [{k: v for k, v in r.items() if k != "timings"} for r in read_jsonl(folder / "report.jsonl")]
    return {
        "records": records,
        "md": (folder / "report.md").read_text(),
        "chunks": (folder / "chunks.jsonl").read_text(),
    }


def test_a_pdf_becomes_page_records_markdown_and_chunks_in_page_order(twelve: Path, tmp_path: Path) -> None:
    engine = FakeEngine()
    conversion = run([twelve], tmp_path, engine)
    rows = read_jsonl(tmp_path / "report.jsonl")
    assert [r["page"] for r in rows] == list(range(1, 13))
    assert {r["page_count"] for r in rows} == {12} and {r["source"] for r in rows} == {str(twelve)}
    assert [r["status"] for r in rows].count("blank") == 1 and rows[BLANK_PAGE - 1]["status"] == "blank"
    assert all(r["text"] == engine.reply for r in rows if r["status"] == "ok")
    assert len(engine.requests) == 11  # the blank page is not sent to the model
    first = rows[0]
    assert first["model"] == "fake-model" and first["prompt_id"].startswith("document-")
    assert first["image"]["width"] > 0 and first["usage"]["total_tokens"] > 0
    assert len(first["source_sha256"]) == 64 and "render_ms" in first["timings"]
    md = (tmp_path / "report.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## ")] == [f"## Page {n}" for n in range(1, 13)]
    chunks = read_jsonl(tmp_path / "chunks.jsonl")
    assert [c["page"] for c in chunks] == [n for n in range(1, 13) if n != BLANK_PAGE]
    assert conversion.summary is not None and conversion.summary.succeeded
    assert json.loads((tmp_path / "summary.json").read_text())["pages_ok"] == 11


def test_bad_documents_become_error_records_and_the_rest_converts(twelve: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_pdf(folder / "good.pdf", [text_page("Good", ["one"]), text_page("Good", ["two"])])
    write_pdf(folder / "locked.pdf", [text_page("Secret", ["x"])], encrypted=True)
    (folder / "zero.pdf").write_bytes(b"")
    write_png(folder / "photo.png")
    conversion = run([folder], tmp_path / "out", FakeEngine())
    out = tmp_path / "out"
    assert [r["status"] for r in read_jsonl(out / "good.jsonl")] == ["ok", "ok"]
    assert [r["status"] for r in read_jsonl(out / "photo.jsonl")] == ["ok"]
    [locked] = read_jsonl(out / "locked.jsonl")
    [zero] = read_jsonl(out / "zero.jsonl")
    assert (locked["status"], locked["reason"], locked["page"]) == ("error", "encrypted", None)
    assert (zero["status"], zero["reason"]) == ("error", "empty")
    assert "locked.pdf" in locked["error"] and "empty" in zero["error"]
    summary = conversion.summary
    assert summary is not None and not summary.succeeded
    assert (summary.documents, summary.documents_failed, summary.pages_ok) == (4, 2, 3)


def test_a_second_run_reuses_finished_pages_and_writes_the_same_files(twelve: Path, tmp_path: Path) -> None:
    run([twelve], tmp_path, FakeEngine())
    before = outputs(tmp_path)
    again = FakeEngine(reply="a different answer that must not appear")
    conversion = run([twelve], tmp_path, again)
    assert again.requests == []
    assert outputs(tmp_path) == before
    assert conversion.summary is not None and conversion.summary.pages_cached == 11


def test_force_a_new_prompt_or_new_sampling_redo_the_pages(twelve: Path, tmp_path: Path) -> None:
    run([twelve], tmp_path, FakeEngine(), pages=[1, 2])
    for options in ({"force": True}, {"prompt": Prompt.from_text("Transcribe.", name="plain")}):
        engine = FakeEngine()
        run([twelve], tmp_path, engine, pages=[1, 2], **options)
        assert len(engine.requests) == 2
    engine = FakeEngine()
    run([twelve], tmp_path, engine, pages=[1, 2], params=replace(ConvertOptions().params, max_tokens=99))
    assert len(engine.requests) == 2


def test_the_anchor_sends_each_page_its_own_text_layer(twelve: Path, tmp_path: Path) -> None:
    engine = FakeEngine()
    run([twelve], tmp_path, engine, pages=[2, 3], anchor="text-layer")
    texts = [r.messages[0].text for r in engine.requests]
    assert "Reference code PS-0002." in texts[0] and "Widget 3" not in texts[0]
    assert "Widget 3" in texts[1] and "3.50 EUR" in texts[1]


class CountingBackend(Client):
    """The in-process client, measuring how many pages are being generated at the same moment."""

    def __init__(self, engine: FakeEngine) -> None:
        super().__init__(LocalTransport(engine, owned=False))
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(0.05)
            return super().generate(request)
        finally:
            with self._lock:
                self.active -= 1


def test_pages_of_several_documents_run_concurrently_up_to_the_bound(twelve: Path, tmp_path: Path) -> None:
    other = write_pdf(tmp_path / "other.pdf", [text_page(f"Other {n}", ["text"]) for n in range(6)])
    backend = CountingBackend(FakeEngine(n_slots=8))
    records = list(convert([twelve, other], out_dir=tmp_path / "out", backend=backend,
                           options=ConvertOptions(concurrency=3, route="vlm")))  # fmt: skip
    assert backend.peak == 3
    assert len(records) == 18 and len({(r.document, r.page) for r in records}) == 18


def test_the_default_concurrency_is_the_engine_slots(twelve: Path, tmp_path: Path) -> None:
    backend = CountingBackend(FakeEngine(n_slots=1))
    list(convert([twelve], out_dir=tmp_path, backend=backend))
    assert backend.peak == 1


def test_jsonl_progress_reports_the_run_for_batch_jobs(twelve: Path, tmp_path: Path) -> None:
    stream = io.StringIO()
    conversion = Conversion([twelve], out_dir=tmp_path, backend=FakeEngine(),
                            options=ConvertOptions(pages=[1, 6], route="vlm"),
                            progress=JsonlProgress(stream))  # fmt: skip
    records: list[PageRecord] = list(conversion)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["start", "page", "page", "document", "summary"]
    assert events[0]["pages"] == 2
    assert sorted(e["status"] for e in events if e["event"] == "page") == ["blank", "ok"]
    assert events[-1]["pages_ok"] == 1 and events[-1]["pages_blank"] == 1
    assert {r.page for r in records} == {1, 6}


def test_the_progress_bar_shows_pages_done_failures_and_the_summary(twelve: Path, tmp_path: Path) -> None:
    console = Console(file=io.StringIO(), width=150)
    engine = FakeEngine(replies=["", ""])  # the first page answers nothing, twice
    conversion = Conversion([twelve], out_dir=tmp_path, backend=engine,
                            options=ConvertOptions(pages=[1, 2], route="vlm"),
                            progress=BarProgress(console))  # fmt: skip
    list(conversion)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "report page 1:" in shown and "empty output" in shown
    assert "2/2 pages, 1 failed" in shown and "pages/min" in shown
    assert "1 document (1 failed), 2 pages: 1 ok, 1 failed" in shown
