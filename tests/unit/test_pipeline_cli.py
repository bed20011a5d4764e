"""`pagescribe convert` as a user types it (the scripted engine stands in for the model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import pagescribe.client.client
from pagescribe.cli import main
from pagescribe.engine.fake import FakeEngine
from pdfgen import text_page, write_pdf, write_png


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(pagescribe.client.client, "load_engine", lambda *args, **kwargs: fake)
    return fake


def convert(*args: str | Path) -> Result:
    # the model is asked for every page (routing is tested in test_pipeline_route)
    return CliRunner().invoke(main, ["convert", *map(str, args), *([] if "--route" in args else ["--route", "vlm"])])


def test_a_good_folder_converts_with_exit_status_0_and_json_progress_on_stdout(
    engine: FakeEngine, tmp_path: Path
) -> None:
    write_pdf(tmp_path / "in" / "a.pdf", [text_page("A", ["one"]), text_page("A", ["two"])])
    write_png(tmp_path / "in" / "b.png")
    result = convert(tmp_path / "in", "--out", tmp_path / "out", "--progress", "jsonl")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "summary" and events[-1]["pages_ok"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file()) == [
        "a.jsonl", "a.md", "b.jsonl", "b.md", "chunks.jsonl", "summary.json",
    ]  # fmt: skip
    assert len(engine.requests) == 3


def test_a_failed_document_gives_exit_status_1_and_says_why(engine: FakeEngine, tmp_path: Path) -> None:
    write_pdf(tmp_path / "in" / "good.pdf", [text_page("Good", ["one"])])
    write_pdf(tmp_path / "in" / "locked.pdf", [text_page("Secret", ["x"])], encrypted=True)
    result = convert(tmp_path / "in", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "locked: error:" in result.stderr and "encrypted" in result.stderr
    assert "2 documents (1 failed)" in result.stderr


def test_pages_that_fail_the_check_give_exit_status_1(engine: FakeEngine, tmp_path: Path) -> None:
    engine.reply = ""
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("A", ["one"])])
    result = convert(pdf, "--out", tmp_path / "out", "--progress", "quiet")
    assert result.exit_code == 1 and result.stderr == ""
    [record] = [json.loads(line) for line in (tmp_path / "out" / "a.jsonl").read_text().splitlines()]
    assert (record["status"], record["reason"], record["fallback_text"]) == ("failed", "empty_output", "A\none")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dpi", "100", "--max-side", "900"], "--dpi or --max-side"),
        (["--url", "http://localhost:1", "--model", "m.gguf"], "one of --model, --url and --endpoint"),
        (["--url", "http://localhost:1", "--profile", "p"], "--region and --profile apply to --endpoint only"),
        (["--timeout", "5"], "--timeout applies to --url and --endpoint only"),
        (["--pages", "3-1"], "page range"),
        (["--chunk-size", "10", "--chunk-overlap", "10"], "overlap"),
        (["--prompt-file", "no-such-prompt"], "no prompt file"),
    ],
)
def test_bad_options_are_usage_errors_that_say_what_to_do(
    engine: FakeEngine, tmp_path: Path, args: list[str], message: str
) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("A", ["one"])])
    result = convert(pdf, "--out", tmp_path / "out", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert engine.requests == []


def test_an_input_that_does_not_exist_is_named(engine: FakeEngine, tmp_path: Path) -> None:
    result = convert(tmp_path / "nope.pdf", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "nope.pdf: no such file or folder" in result.stderr


def test_the_markdown_prompt_section_chunks_and_confidence_are_chosen_by_flags(
    engine: FakeEngine, tmp_path: Path
) -> None:
    engine.reply = "# Costs\n\nThe costs rose in the north and fell in the south."
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("A", ["one"]), text_page("B", ["two"])])
    out = tmp_path / "out"
    result = convert(pdf, "--out", out, "--prompt-file", "markdown", "--chunk-by", "section", "--chunk-size", "8",
                     "--confidence", "--progress", "quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "a.jsonl").read_text().splitlines()]
    chunks = [json.loads(line) for line in (out / "chunks.jsonl").read_text().splitlines()]
    assert {r["prompt_id"].split("-")[0] for r in records} == {"markdown"}
    assert engine.requests[0].messages[0].text.startswith("You will be provided") and "Markdown tables" in (
        engine.requests[0].messages[0].text
    )
    assert all(r["confidence"] == pytest.approx(0.778801) for r in records)  # exp(FAKE_LOGPROB)
    assert all(c["tokens"] <= 8 and c["headings"] == ["Costs"] for c in chunks)
    assert {tuple(c["pages"]) for c in chunks} == {(1,), (2,)}


def test_describe_takes_a_packaged_prompt_by_name(
    engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pagescribe.cli.describe

    monkeypatch.setattr(pagescribe.cli.describe, "load_engine", lambda *args, **kwargs: engine)
    page = write_png(tmp_path / "p.png")
    result = CliRunner().invoke(main, ["describe", str(page), "--prompt-file", "markdown", "--max-tokens", "3"])
    unknown = CliRunner().invoke(main, ["describe", str(page), "--prompt-file", "sonnet"])
    assert result.exit_code == 0, result.output
    assert "Markdown tables" in engine.requests[0].messages[0].text
    assert unknown.exit_code == 2 and "packaged: document, markdown" in unknown.output
