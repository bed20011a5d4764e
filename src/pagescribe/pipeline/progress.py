"""Progress reporting for a run: a rich bar for people, JSON lines for batch jobs, log lines, or nothing.

Every method is called from the thread that iterates the run, never from the page workers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from pagescribe.pipeline.records import PageRecord
from pagescribe.pipeline.summary import RunSummary
from pagescribe.pipeline.writers import json_line


class ProgressSink(Protocol):
    """Receives the events of one run."""

    def start(self, *, documents: int, pages: int) -> None:
        """The run is planned: this many documents and pages (of the documents that could be opened)."""
        ...

    def page_done(self, record: PageRecord) -> None:
        """A page (or a document's error record) is final."""
        ...

    def document_done(self, name: str, records: Sequence[PageRecord]) -> None:
        """A document's files are written."""
        ...

    def finish(self, summary: RunSummary) -> None:
        """The run is over."""
        ...


class QuietProgress:
    """Reports nothing."""

    def start(self, *, documents: int, pages: int) -> None:
        pass

    def page_done(self, record: PageRecord) -> None:
        pass

    def document_done(self, name: str, records: Sequence[PageRecord]) -> None:
        pass

    def finish(self, summary: RunSummary) -> None:
        pass


class JsonlProgress(QuietProgress):
    """One JSON object per event on ``stream``: ``start``, ``page``, ``document``, ``summary``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _emit(self, event: str, **data: Any) -> None:
        self.stream.write(json_line({"event": event, **data}))
        self.stream.flush()

    def start(self, *, documents: int, pages: int) -> None:
        self._emit("start", documents=documents, pages=pages)

    def page_done(self, record: PageRecord) -> None:
        self._emit(
            "page",
            document=record.document,
            source=record.source,
            page=record.page,
            status=record.status,
            reason=record.reason,
            cached=record.cached,
        )

    def document_done(self, name: str, records: Sequence[PageRecord]) -> None:
        failed = sum(1 for r in records if r.status in ("failed", "error"))
        self._emit("document", document=name, pages=len(records), failed=failed)

    def finish(self, summary: RunSummary) -> None:
        self._emit("summary", **summary.to_json())


class LogProgress(QuietProgress):
    """A line per finished document and the summary, on ``stream`` (stderr): for logs that are not a TTY."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def document_done(self, name: str, records: Sequence[PageRecord]) -> None:
        self.stream.write(document_line(name, records) + "\n")
        self.stream.flush()

    def finish(self, summary: RunSummary) -> None:
        self.stream.write(summary.describe() + "\n")
        self.stream.flush()


class _PagesPerMinute(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- pages/min" if speed is None else f"{speed * 60:.1f} pages/min", style="cyan")


class BarProgress(LogProgress):
    """A rich bar on stderr: pages done of total, failed, rate and time left; errors printed above it."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        super().__init__(sys.stderr)
        self._failed = 0
        self._bar = Progress(
            TextColumn("[bold]converting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages, [red]{task.fields[failed]} failed"),
            _PagesPerMinute(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._bar.add_task("convert", total=None, failed=0, start=False)

    def start(self, *, documents: int, pages: int) -> None:
        self._bar.update(self._task, total=pages)
        self._bar.start_task(self._task)
        self._bar.start()

    def page_done(self, record: PageRecord) -> None:
        if record.status in ("failed", "error"):
            self._failed += 1
            where = record.document if record.page is None else f"{record.document} page {record.page}"
            # Text, not markup: a message may hold brackets that rich would read as styles.
            self.console.print(Text.assemble((f"{where}: ", "red"), record.error or record.reason or ""))
        advance = 1 if record.page is not None else 0
        self._bar.update(self._task, advance=advance, failed=self._failed)

    def document_done(self, name: str, records: Sequence[PageRecord]) -> None:
        pass

    def finish(self, summary: RunSummary) -> None:
        self._bar.stop()
        self.console.print(summary.describe())


def document_line(name: str, records: Sequence[PageRecord]) -> str:
    """``NAME: N pages, F failed``, or ``NAME: error: ...`` for a document that could not be read."""
    errors = [r.error for r in records if r.status == "error"]
    if errors:
        return f"{name}: error: {errors[0]}"
    failed = sum(1 for r in records if r.status == "failed")
    return f"{name}: {len(records)} pages, {failed} failed"


def make_progress(mode: str, *, stream: TextIO | None = None) -> ProgressSink:
    """``auto`` (bar on a terminal, log lines otherwise), ``bar``, ``quiet`` or ``jsonl``."""
    if mode == "quiet":
        return QuietProgress()
    if mode == "jsonl":
        return JsonlProgress(stream)
    err = sys.stderr
    if mode == "bar" or (mode == "auto" and err.isatty()):
        return BarProgress()
    if mode == "auto":
        return LogProgress(err)
    raise ValueError(f"unknown progress mode {mode!r}: use auto, bar, quiet or jsonl")
