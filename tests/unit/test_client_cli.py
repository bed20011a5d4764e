"""`pagescribe invoke` against scripted servers and a fake-engine server: what the user sees."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from starlette.responses import Response
from test_client_support import ScriptedServer, container_error_body, error, ok, page_png, scripted_server

from pagescribe.cli.invoke import invoke_command
from pagescribe.client import retry
from pagescribe.engine.fake import FakeEngine
from servers import LiveServer, sagemaker_env


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(retry, "_sleep", waits.append)
    return waits


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "page.png"
    path.write_bytes(page_png())
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(invoke_command, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_description_is_printed_and_the_options_travel_as_parameters(server: ScriptedServer, page: Path) -> None:
    server.play(ok("Invoice 42 from ACME."))
    code, out, err = invoke(str(page), "--url", server.url, "--prompt", "Read it.", "--max-tokens", "99", "--seed", "3")
    assert (code, out, err) == (0, "Invoice 42 from ACME.\n", "")
    [seen] = server.seen
    assert seen.path == "/invocations" and seen.json()["inputs"][0][0]["content"] == "Read it."
    assert seen.json()["parameters"] == {
        "max_tokens": 99,
        "temperature": 0.0,
        "top_p": 1.0,
        "repeat_penalty": 1.0,
        "seed": 3,
    }


def test_503_twice_then_200_is_retried_to_success(server: ScriptedServer, page: Path, slept: list[float]) -> None:
    busy = error(503, "overloaded", "the queue is full", Retry_After="2")
    server.play(busy, busy, ok("finally"))
    code, out, _ = invoke(str(page), "--url", server.url)
    assert (code, out) == (0, "finally\n")
    assert len(server.seen) == 3 and len(slept) == 2 and min(slept) >= 2


def test_a_400_is_not_retried_and_its_message_reaches_the_user_verbatim(server: ScriptedServer, page: Path) -> None:
    message = "unknown parameter(s): parameters.beam_width"
    server.play(error(400, "invalid_request_error", message))
    code, out, err = invoke(str(page), "--url", server.url)
    assert (code, out) == (1, "")
    assert err == f"pagescribe: {page}: {message}\n"
    assert len(server.seen) == 1


def test_the_endpoint_transport_prints_the_same_and_retries_a_busy_container(
    server: ScriptedServer, page: Path
) -> None:
    busy = container_error_body(503, "overloaded", "the queue is full")
    server.play(busy, ok("from the endpoint"))
    code, out, err = invoke(str(page), "--endpoint", "my-endpoint", env=sagemaker_env(server.url))
    assert (code, out, err) == (0, "from the endpoint\n", "")
    assert [s.path for s in server.seen] == ["/endpoints/my-endpoint/invocations"] * 2


def test_a_corrupt_file_is_a_clear_error_and_nothing_is_sent(server: ScriptedServer, tmp_path: Path) -> None:
    bad, good = tmp_path / "scan.png", tmp_path / "page.png"
    bad.write_bytes(page_png()[:150])
    good.write_bytes(page_png())
    server.play(ok("the good one"))
    code, out, err = invoke(str(bad), str(good), "--url", server.url)
    assert code == 1
    assert err.startswith(f"pagescribe: {bad}: truncated or corrupt PNG")
    assert out == f"== {good} ==\nthe good one\n"  # the other file still gets its answer
    assert len(server.seen) == 1


def test_json_gives_one_record_per_page_of_a_pdf(server: ScriptedServer, tmp_path: Path) -> None:
    pdf = tmp_path / "two.pdf"
    first, second = (Image.new("RGB", (200, 260), color) for color in ("white", "lightgray"))
    first.save(pdf, "PDF", save_all=True, append_images=[second])
    server.play(ok("page text"))
    code, out, _ = invoke(str(pdf), "--url", server.url, "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["page"], r["page_count"], r["text"]) for r in records] == [
        (1, 2, "page text"),
        (2, 2, "page text"),
    ]
    assert records[0]["usage"] == {"prompt_tokens": 600, "completion_tokens": 5, "total_tokens": 605}
    assert len(server.seen) == 2 and all("image" in s.json()["inputs"][0][0] for s in server.seen)


def test_a_stream_that_breaks_off_keeps_the_text_so_far_and_reports_the_error(
    server: ScriptedServer, page: Path
) -> None:
    lines = b'{"token":{"text":"Invoice"}}\n{"error":{"type":"server_error","message":"internal error"}}\n'
    server.play(Response(lines, media_type="application/jsonlines"))
    code, out, err = invoke(str(page), "--url", server.url, "--stream")
    assert (code, out, err) == (1, "Invoice\n", f"pagescribe: {page}: internal error\n")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "give --endpoint NAME or --url URL"),
        (["--url", "http://x", "--endpoint", "e"], "exactly one"),
        (["--url", "http://x", "--region", "eu-west-1"], "apply to --endpoint only"),
        (["--url", "http://x", "--stream", "--json"], "not both"),
    ],
)
def test_usage_mistakes_are_explained(page: Path, args: list[str], problem: str) -> None:
    result = CliRunner().invoke(invoke_command, [str(page), *args])
    assert result.exit_code == 2 and problem in result.stderr


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """The real app with a fake engine that takes 0.15 s per word."""
    with LiveServer(FakeEngine(reply="one two three four five six", token_delay_s=0.15)) as server:
        yield server.url


@pytest.mark.parametrize("transport", ["--url", "--endpoint"])
def test_stream_prints_words_while_they_are_generated(
    slow_server: str, page: Path, tmp_path: Path, transport: str
) -> None:
    target = slow_server if transport == "--url" else "my-endpoint"
    code = "from pagescribe.cli.invoke import invoke_command; invoke_command()"
    env = {**os.environ, **sagemaker_env(slow_server)}
    args = [sys.executable, "-c", code, str(page), transport, target, "--stream"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        first = os.read(proc.stdout.fileno(), 1000).decode()
        still_running = proc.poll() is None
        rest = proc.stdout.read().decode()
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    assert ready and still_running and first.startswith("one")
    assert first + rest == "one two three four five six\n" and len(first) < len(first + rest)
