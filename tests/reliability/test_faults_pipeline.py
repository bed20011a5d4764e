"""The document pipeline killed (SIGKILL) at random moments, twenty times over, then run to the end.

However the kills fall (planning, rendering, mid-page, while writing a document's files, while writing the
run's chunks and summary), the last run ends with every page present exactly once, with the same records an
uninterrupted run writes, and no half-written file left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import InvalidRequest
from pagescribe.pipeline import convert
from pdfgen import BLANK_PAGE, twelve_page_pdf, write_png

RUNS = 20
# One conversion in its own process: prints "ready" once imported, then a line per finished page.
DRIVER = """
import sys
from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline import convert

print("ready", flush=True)
engine = FakeEngine(token_delay_s=0.004, n_slots=2)
for record in convert(sys.argv[2:], out_dir=sys.argv[1], backend=engine):
    print(record.document, record.page, record.status, flush=True)
print("done", flush=True)
"""


def start(driver: Path, out: Path, inputs: list[Path]) -> subprocess.Popen[str]:
    args = [sys.executable, str(driver), str(out), *map(str, inputs)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def finish(driver: Path, out: Path, inputs: list[Path]) -> float:
    """Run to the end; the seconds the conversion itself took."""
    process = start(driver, out, inputs)
    began = time.monotonic()
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and output.rstrip().endswith("done"), output
    return time.monotonic() - began


def records(out: Path, name: str) -> list[tuple[Any, ...]]:
    rows = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
    return [(r["document"], r["page"], r["status"], r["text"], (r["image"] or {}).get("sha256")) for r in rows]


def chunk_keys(out: Path) -> list[tuple[Any, ...]]:
    rows = [json.loads(line) for line in (out / "chunks.jsonl").read_text().splitlines()]
    return [(r["document"], r["page"], r["chunk"], r["text"]) for r in rows]


def test_twenty_random_kills_lose_no_page_and_duplicate_none(tmp_path: Path) -> None:
    inputs = [
        twelve_page_pdf(tmp_path / "in" / "report.pdf"),
        write_png(tmp_path / "in" / "cover.png", text="Cover page"),
        write_png(tmp_path / "in" / "back.png", text="Back page", size=(300, 420)),
    ]
    names = ["report", "cover", "back"]
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    reference = tmp_path / "reference"
    full = finish(driver, reference, inputs)

    seed = random.randrange(2**32)
    chance = random.Random(seed)
    out = tmp_path / "out"
    outcomes = []
    for _ in range(RUNS):
        process = start(driver, out, inputs)
        time.sleep(chance.uniform(0, full * 1.2))
        os.kill(process.pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
        outcomes.append("finished" if output.rstrip().endswith("done") else f"killed after {output.count(chr(10))}")
    finish(driver, out, inputs)

    context = f"seed {seed}, runs: {outcomes}"
    for name in names:
        got, want = records(out, name), records(reference, name)
        assert got == want, context
        pages = [page for _, page, *_ in got]
        assert pages == sorted(set(pages)), context  # every page once, in order
    assert [p for _, p, *_ in records(out, "report")] == list(range(1, 13))
    assert records(out, "report")[BLANK_PAGE - 1][2] == "blank"
    assert chunk_keys(out) == chunk_keys(reference), context
    assert len(set(chunk_keys(out))) == len(chunk_keys(out)), context
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["pages"], summary["pages_ok"] + summary["pages_blank"], summary["pages_failed"]) == (14, 14, 0), (
        f"{context}; summary {summary}; report {records(out, 'report')}"
    )
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [], context
    assert any(o.startswith("killed") for o in outcomes), context  # the kills did land mid-run


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    inputs = [twelve_page_pdf(tmp_path / "in" / "report.pdf")]
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.replace("0.004", "0.05"))  # slow enough to still be running
    out = tmp_path / "out"
    first = start(driver, out, inputs)
    try:
        assert first.stdout is not None and first.stdout.readline()  # a page is done: the run is writing
        with pytest.raises(InvalidRequest, match="another pagescribe run is writing"):
            list(convert(inputs, out_dir=out, backend=FakeEngine()))
    finally:
        first.kill()
        first.wait(10)
    # Killed, it holds nothing: the next run goes ahead, clears what the kill left, and keeps the rest.
    leftover = out / ".chunks.jsonl.ab12cd_3.tmp"
    leftover.write_text("half a fi")
    mine = [out / ".notes.tmp", out / "draft.tmp"]
    for path in mine:
        path.write_text("not pagescribe's")
    assert len(list(convert(inputs, out_dir=out, backend=FakeEngine()))) == 12
    assert not leftover.exists() and all(p.read_text() == "not pagescribe's" for p in mine)
