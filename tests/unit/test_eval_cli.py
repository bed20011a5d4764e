"""`pagescribe eval` as a user types it: scoring outputs already written, comparing two results, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pagescribe.cli import main
from pagescribe.eval.pageset import write_pageset

REFERENCE = "Kestrel Point was first lit in 1842. The station was automated in 1987."
LINES = [
    {"id": "light", "file": "light.png", "category": "scan", "expected_route": "ocr", "reference": REFERENCE,
     "checks": [{"type": "present", "text": "first lit in 1842"},
                {"type": "order", "before": "first lit", "after": "automated"},
                {"type": "absent", "text": "demolished"}]},
    {"id": "chart", "file": "chart.png", "category": "chart", "expected_route": "vlm",
     "checks": [{"type": "number", "label": "Nickel", "value": 41.7}]},
]  # fmt: skip
RIGHT = {"light": REFERENCE, "chart": "Nickel 41.7"}
WRONG = {"light": "The station was automated in 1987; it was demolished in 1990.", "chart": "Nickel 14.7"}


@pytest.fixture
def pageset(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    root.mkdir()
    for line in LINES:
        (root / line["file"]).write_bytes(b"\x89PNG\r\n\x1a\n")
    write_pageset(root, LINES)
    return root


def outputs(path: Path, texts: dict[str, str], **extra: object) -> Path:
    path.write_text("".join(json.dumps({"id": k, "text": v, **extra}) + "\n" for k, v in texts.items()))
    return path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["eval", *map(str, args)], terminal_width=160)


def test_help_shows_both_ways_in(pageset: Path) -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "pagescribe eval PAGESET --backend text-layer|ocr|auto|vlm" in result.output
    assert "pagescribe eval compare A.json B.json" in result.output
    assert "compare" in result.output and "run" in result.output
    run_help = run("run", "--help")
    assert "--backend [text-layer|ocr|auto|vlm]" in run_help.output and "--records" in run_help.output


def test_a_right_transcription_passes_every_check(pageset: Path, tmp_path: Path) -> None:
    result = run(pageset, "--records", outputs(tmp_path / "right.jsonl", RIGHT), "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    overall = next(line for line in result.output.splitlines() if "overall" in line)
    assert "4/4 (100%)" in overall and "1.000" in overall
    assert "Failed checks" not in result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["overall"]["checks_passed"] == 4 and data["overall"]["word_recall"] == 1.0
    assert data["categories"]["scan"]["cer"] == 0.0
    assert data["config"]["records"].endswith("right.jsonl")


def test_a_wrong_transcription_fails_its_checks_and_says_which(pageset: Path, tmp_path: Path) -> None:
    result = run(pageset, "--records", outputs(tmp_path / "wrong.jsonl", WRONG), "--json", tmp_path / "w.json")
    assert result.exit_code == 0, result.output
    overall = next(line for line in result.output.splitlines() if "overall" in line)
    assert "0/4 (0%)" in overall
    assert "Failed checks (4; the first 4):" in result.output
    assert "chart: number 'Nickel' = 41.7: the label's number is 14.7" in result.output
    assert "light: absent 'demolished': 'demolished' found at character" in result.output
    page = {p["id"]: p for p in json.loads((tmp_path / "w.json").read_text())["pages"]}["light"]
    assert [c["passed"] for c in page["checks"]] == [False, False, False]
    assert page["word_recall"] == pytest.approx(8 / 13, abs=1e-4)  # the, station, was x2, automated, in x2, 1987


def test_a_convert_output_folder_is_matched_by_file_name_and_routes_are_scored(pageset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name, route in (("light", "ocr"), ("chart", "text")):
        record = {"document": name, "page": 1, "status": "ok", "text": RIGHT[name], "route": route,
                  "timings": {"render_ms": 500.0, "ocr_ms": 1500.0}}  # fmt: skip
        (out / f"{name}.jsonl").write_text(json.dumps(record) + "\n")
    (out / "chunks.jsonl").write_text('{"text": "not a page"}\n')
    (out / "summary.json").write_text('{"elapsed_s": 6.0}\n')
    result = run(pageset, "--records", out, "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "2 pages in 6.0 s; 20.0 pages/min; 2.00 s of work per page; 100% of pages avoided the model" in result.output
    routing = json.loads((tmp_path / "r.json").read_text())["routing"]
    assert routing["matrix"]["vlm"]["text"] == 1 and routing["recall"] == {"text": None, "ocr": 1.0, "vlm": 0.0}
    assert routing["precision"]["text"] == 0.0


def test_a_page_the_outputs_lack_is_scored_as_missing(pageset: Path, tmp_path: Path) -> None:
    extra = outputs(tmp_path / "some.jsonl", {"light": REFERENCE, "stray": "x"})
    result = run(pageset, "--records", extra, "--json", tmp_path / "r.json")
    assert "note: 0 records" not in result.output
    pages = {p["id"]: p for p in json.loads((tmp_path / "r.json").read_text())["pages"]}
    assert pages["chart"]["status"] == "missing" and pages["chart"]["checks_passed"] == 0


def test_compare_prints_both_results_per_category_with_the_change(pageset: Path, tmp_path: Path) -> None:
    run(pageset, "--records", outputs(tmp_path / "wrong.jsonl", WRONG), "--json", tmp_path / "a.json")
    run(pageset, "--records", outputs(tmp_path / "right.jsonl", RIGHT), "--json", tmp_path / "b.json")
    result = run("compare", tmp_path / "a.json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert "0%" in rows["scan"] and "100%" in rows["scan"] and "+100%" in rows["scan"]
    assert "+0.385" in rows["scan"]  # word recall 8/13 -> 1
    assert "+100%" in rows["overall"]


def test_compare_refuses_a_file_that_is_not_an_eval_result(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"pages": 3}')
    result = run("compare", tmp_path / "x.json", tmp_path / "x.json")
    assert result.exit_code == 1 and "x.json: not a `pagescribe eval --json` result" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --backend (to convert the pages) or --records (to score outputs), not both"),
        (("--backend", "ocr", "--records", "."), "give --backend"),
        (("--backend", "text-layer", "--url", "http://x"), "--model, --url and --endpoint go with --backend auto or"),
        (("--backend", "vlm", "--url", "http://x", "--endpoint", "e"), "give one of --model, --url and --endpoint"),
    ],
)
def test_usage_errors_say_what_to_give(pageset: Path, args: tuple[str, ...], message: str) -> None:
    result = run(pageset, *args)
    assert result.exit_code == 2 and message in result.output


def test_a_malformed_page_set_is_an_error_naming_the_line(pageset: Path, tmp_path: Path) -> None:
    (pageset / "pageset.jsonl").write_text('{"id": "x", "file": "light.png", "category": "c", "page": 2}\n')
    result = run(pageset, "--records", outputs(tmp_path / "o.jsonl", RIGHT))
    assert result.exit_code == 1
    assert "pageset.jsonl line 1: 'page' applies to PDF files only" in result.output
