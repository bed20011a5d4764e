"""`pagescribe eval` end to end on a small generated page set: the text layer and real Tesseract (no model), and
the tiny random-weight model through llama.cpp; a wrong transcription of a real convert output fails its checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pagescribe.cli import main
from pagescribe.eval.pageset import write_pageset
from pagescribe.eval.scans import ScanStyle
from pagescribe.eval.synthpages import bar_chart, blank_page, single_column, two_column, write_synthetic
from pagescribe.models.files import ModelFiles
from pagescribe.pipeline.ocr import tesseract_available

pytest.importorskip("reportlab")


@pytest.fixture(scope="module")
def pageset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One- and two-column text, a chart, a blank page, and a 300-DPI scan of the one-column page."""
    root = tmp_path_factory.mktemp("pageset")
    pages = [single_column(), two_column(), bar_chart(), blank_page()]
    scans = (ScanStyle(dpi=300, angle=1.0),)
    write_pageset(root, write_synthetic(root, pages, scans=scans, scan_categories=frozenset({"born-digital"})))
    return root


def evaluate(out: Path, *args: str | Path) -> dict[str, Any]:
    """Run `pagescribe eval ARGS --json OUT` and read OUT back, with the pages by id."""
    result = CliRunner().invoke(main, ["eval", *map(str, args), "--progress", "quiet", "--json", str(out)])
    assert result.exit_code == 0, result.output
    print(result.output)  # the table, for whoever reads the test log
    data: dict[str, Any] = json.loads(out.read_text())
    data["by_id"] = {p["id"]: p for p in data["pages"]}
    return data


def test_the_text_layer_backend_reads_born_digital_pages_word_for_word_in_reading_order(
    pageset: Path, tmp_path: Path
) -> None:
    data = evaluate(tmp_path / "text.json", pageset, "--backend", "text-layer", "--work", tmp_path / "work")
    for page_id in ("synth-single-column", "synth-two-column"):
        page = data["by_id"][page_id]
        assert page["route"] == "text" and page["word_recall"] >= 0.99, page
        assert all(c["passed"] for c in page["checks"]), page["checks"]  # the order checks included
    assert data["by_id"]["synth-blank"]["route"] == "blank"
    chart = data["by_id"]["synth-bar-chart"]
    assert [c["passed"] for c in chart["checks"]] == [True, False, False, False, False]  # values apart from bars
    assert data["routing"]["matrix"]["vlm"]["text"] == 1  # forced to text: the matrix shows the misroute
    assert data["timings"]["pages_per_minute"] > 0

    # The same convert output, one figure wrong: `--records` scores it, and the checks that hold it fail.
    out = tmp_path / "work" / "out"
    record_file = out / "synth-single-column.jsonl"
    record = json.loads(record_file.read_text())
    record["text"] = record["text"].replace("1842", "1824").replace("nineteen", "ninety")
    record_file.write_text(json.dumps(record) + "\n")
    wrong = evaluate(tmp_path / "wrong.json", pageset, "--records", out)["by_id"]["synth-single-column"]
    failed = [c["check"] for c in wrong["checks"] if not c["passed"]]
    assert failed == ["present 'from fourteen to nineteen nautical miles'",
                      "order 'was first lit in 1842' before 'The station was automat…'"]  # fmt: skip
    assert wrong["word_recall"] < 1.0


def test_the_ocr_backend_reads_a_300_dpi_scan_through_tesseract(pageset: Path, tmp_path: Path) -> None:
    if not tesseract_available():
        pytest.skip("tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-eng)")
    scan_only = tmp_path / "scan-only"
    shutil.copytree(pageset, scan_only, dirs_exist_ok=True)
    lines = [json.loads(line) for line in (pageset / "pageset.jsonl").read_text().splitlines()]
    write_pageset(scan_only, [line for line in lines if line["category"] in ("scan", "blank")])
    data = evaluate(tmp_path / "ocr.json", scan_only, "--backend", "ocr")
    scan = data["by_id"]["synth-single-column-scan300"]
    assert scan["route"] == "ocr" and scan["status"] == "ok", scan
    assert scan["word_recall"] >= 0.95 and scan["cer"] < 0.05
    assert all(c["passed"] for c in scan["checks"]), scan["checks"]
    assert data["categories"]["scan"]["routes"] == {"ocr": 1}


def test_the_vlm_backend_runs_the_tiny_model_on_every_page(
    pageset: Path, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    two = tmp_path / "two-pages"
    shutil.copytree(pageset, two, dirs_exist_ok=True)
    lines = [json.loads(line) for line in (pageset / "pageset.jsonl").read_text().splitlines()]
    write_pageset(two, [line for line in lines if line["id"] in ("synth-single-column", "synth-bar-chart")])
    model = ["--model", tiny_model.text, "--mmproj", tiny_model.mmproj, "--ctx", "2048", "--threads", "2"]
    data = evaluate(tmp_path / "vlm.json", two, "--backend", "vlm", *model, "--max-tokens", "4")
    assert [p["route"] for p in data["pages"]] == ["vlm", "vlm"]
    assert all(p["status"] in ("ok", "failed") for p in data["pages"])
    # Random weights: a few tokens of noise, so the present and number checks fail and recall is near 0.
    assert data["by_id"]["synth-single-column"]["word_recall"] < 0.2
    assert data["by_id"]["synth-bar-chart"]["checks_passed"] == 0
    assert data["config"]["model"] and data["config"]["max_tokens"] == 4 and data["routing"]["avoided_model"] == 0.0
