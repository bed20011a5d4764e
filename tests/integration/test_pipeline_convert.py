"""`pagescribe convert` through the real llama.cpp engine on the tiny random-weight model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pagescribe.engine.base import Health, Work
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.models.files import ModelFiles
from pagescribe.models.resolve import resolve_model
from pagescribe.pipeline import ConvertOptions, convert
from pagescribe.types import GenerationRequest, SamplingParams
from pdfgen import BLANK_PAGE, twelve_page_pdf


def test_a_twelve_page_pdf_converts_from_the_command_line(tiny_model: ModelFiles, tmp_path: Path) -> None:
    pdf = twelve_page_pdf(tmp_path / "report.pdf")
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "pagescribe.cli", "convert", str(pdf), "--out", str(out), "--route", "vlm",
        "--model", str(tiny_model.text), "--mmproj", str(tiny_model.mmproj), "--ctx", "2048",
        "--max-tokens", "8", "--progress", "jsonl",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1 only if the random model's output failed the check
    records = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert [r["page"] for r in records] == list(range(1, 13))
    assert {r["page_count"] for r in records} == {12}
    assert records[BLANK_PAGE - 1]["status"] == "blank"
    answered = [r for r in records if r["status"] in ("ok", "failed")]
    expected_model = resolve_model(tiny_model.text, mmproj=tiny_model.mmproj).model_id
    assert len(answered) == 11 and {r["model"] for r in answered} == {expected_model}
    assert all(r["usage"]["completion_tokens"] > 0 for r in answered)
    assert any(r["text"] for r in answered)
    md = (out / "report.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## Page ")] == [f"## Page {n}" for n in range(1, 13)]
    chunks = [json.loads(line) for line in (out / "chunks.jsonl").read_text().splitlines()]
    assert chunks and all(c["source"] == str(pdf) and 1 <= c["page"] <= 12 for c in chunks)
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["event"] == "summary" and summary["pages"] == 12
    assert (done.returncode == 0) == (summary["pages_failed"] == 0)


class RecordingEngine:
    """The real engine, with every request it is given kept for inspection."""

    def __init__(self, engine: LlamaCppEngine) -> None:
        self.engine = engine
        self.requests: list[GenerationRequest] = []

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    @property
    def slots(self) -> int:
        return self.engine.slots

    def load(self) -> None:
        self.engine.load()

    def submit(self, works: Sequence[Work], *, wait: bool = False) -> None:
        self.requests.extend(work.request for work in works)
        self.engine.submit(works, wait=wait)

    def health(self) -> Health:
        return self.engine.health()

    def close(self) -> None:
        pass


def test_the_text_layer_anchor_reaches_the_model_prompt(tiny_engine: LlamaCppEngine, tmp_path: Path) -> None:
    pdf = twelve_page_pdf(tmp_path / "report.pdf")
    engine = RecordingEngine(tiny_engine)
    options = ConvertOptions(route="vlm", pages=[2, 3], anchor="text-layer",
                             params=SamplingParams(max_tokens=4, seed=0))
    records = list(convert([pdf], out_dir=tmp_path / "out", backend=engine, options=options))
    assert sorted(r.page or 0 for r in records) == [2, 3]
    prompts = [tiny_engine.render_prompt(r) for r in engine.requests[:2]]
    page_two = next(p for p in prompts if "Section 2" in p)
    page_three = next(p for p in prompts if "Price list 3" in p)
    assert "Reference code PS-0002." in page_two and "Widget 3" not in page_two
    assert "Widget 3" in page_three and "3.50 EUR" in page_three
    assert all(p.index("<__image__>") < p.index("Reference code" if p is page_two else "Widget 3") for p in prompts)
