"""Kill -9 in the middle of a run, run again: every page once, and no finished page asked for twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline import ConvertOptions, convert
from pdfgen import BLANK_PAGE, twelve_page_pdf

# A run in its own process, slow enough to be killed half-way: about 0.25 s per page.
DRIVER = """
import sys
from pagescribe.engine.fake import FakeEngine
from pagescribe.pipeline import ConvertOptions, convert

vlm = ConvertOptions(route="vlm")  # every page asks the model
for record in convert([sys.argv[1]], out_dir=sys.argv[2], backend=FakeEngine(token_delay_s=0.02), options=vlm):
    print(record.page, record.status, flush=True)
"""


def cache_entries(out: Path) -> list[Path]:
    return sorted((out / ".pagescribe-cache").glob("*/*.json"))


def test_a_run_killed_mid_way_finishes_on_rerun_without_redoing_pages(tmp_path: Path) -> None:
    pdf = twelve_page_pdf(tmp_path / "report.pdf")
    out = tmp_path / "out"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(driver), str(pdf), str(out)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(cache_entries(out)) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    printed, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    finished_first = {int(line.split()[0]) for line in printed.splitlines() if line.split()[1] == "ok"}
    cached_first = len(cache_entries(out))
    assert 4 <= cached_first < 11 and not (out / "report.jsonl").exists()

    engine = FakeEngine()
    records = list(convert([pdf], out_dir=out, backend=engine, options=ConvertOptions(route="vlm")))

    rows = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert [r["page"] for r in rows] == list(range(1, 13))
    assert len(records) == 12 and all(r["status"] in ("ok", "blank") for r in rows)
    page_of_image = {r["image"]["sha256"]: r["page"] for r in rows}
    redone = {page_of_image[req.images[0].sha256] for req in engine.requests}
    assert len(engine.requests) == 11 - cached_first == len(redone)
    assert not redone & finished_first and BLANK_PAGE not in redone
    assert {r.page for r in records if r.cached} | redone | {BLANK_PAGE} == set(range(1, 13))
