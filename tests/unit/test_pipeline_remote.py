"""Remote models: pages go through ``pagescribe.client`` to a server or an endpoint and come back as results.

Most tests run the real server app (``create_app``) around the scripted engine, so what they compare is what
the model behind the server was asked, and what the pipeline recorded from its answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient
from test_client_support import answer

from pagescribe.cli import main
from pagescribe.client import Client, RetryPolicy
from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import InvalidRequest
from pagescribe.pipeline import Conversion, ConvertOptions, PageRecord
from pagescribe.pipeline.render import RenderedPage
from pagescribe.pipeline.transcribe import DEFAULT_PARAMS, build_request
from pagescribe.pipeline.writers import read_jsonl
from pagescribe.prompts import load_prompt
from pagescribe.server.app import create_app
from pagescribe.server.settings import ServerSettings
from pagescribe.types import GenerationRequest, ImageInput, Timings, Usage
from pdfgen import text_page, twelve_page_pdf, write_pdf
from servers import LiveServer, free_port, sagemaker_env

PROMPT = load_prompt()
ENDPOINT = "pagescribe-test"
URL = "http://testserver"


def page_request(*, anchor: str | None = None, time_limit_s: float | None = None) -> GenerationRequest:
    image = ImageInput(4, 2, bytes(range(24)))
    page = RenderedPage(Path("a.pdf"), 1, 1, image, "text")
    return build_request(PROMPT, page, params=DEFAULT_PARAMS, anchor=anchor, time_limit_s=time_limit_s)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(model_name="served-model", reply="The page lists widgets and their prices.")


@pytest.fixture
def served(engine: FakeEngine) -> Iterator[Client]:
    """A client of the real app around ``engine``, in process; nothing is retried (no waiting)."""
    with TestClient(create_app(ServerSettings(log_level="error"), engine), base_url=URL) as http:
        yield Client.for_url(URL, http_client=http, retry=RetryPolicy(attempts=1))


def run(pdf: Path, out: Path, backend: Client, *, model_id: str | None = None, **options: object) -> list[PageRecord]:
    conversion = Conversion(
        [pdf], out_dir=out, backend=backend, options=ConvertOptions(**{"route": "vlm", **options}), model_id=model_id  # type: ignore[arg-type]
    )
    return sorted(conversion, key=lambda r: r.page or 0)


def test_the_model_behind_the_server_gets_the_request_the_pipeline_built(served: Client, engine: FakeEngine) -> None:
    request = page_request(anchor="Page text: Widget", time_limit_s=30.0)
    result = served.generate(request)
    [received] = engine.requests
    # Text, image and anchor in their order, the pixels intact, every sampling setting and the time limit.
    assert received.messages == request.messages
    # (The server counts the time limit from when the request arrived, so a little has gone by.)
    assert received.params == request.params and received.time_limit_s == pytest.approx(30.0, abs=1.0)
    assert (result.text, result.finish_reason, result.model) == (engine.reply, "stop", "served-model")
    assert result.usage.completion_tokens == len(engine.reply.split()) and result.usage.prompt_tokens > 0


def test_the_answer_keeps_cached_tokens_and_timings_and_falls_back_to_known_names(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 600, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 550}}
    body = answer("Widgets.", usage=usage, finish_reason="content_filter", model="")
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    client = Client.for_url("http://server:8080", http_client=http)
    result = client.generate(page_request())
    assert result.usage == Usage(prompt_tokens=600, completion_tokens=5, cached_tokens=550)
    assert result.timings == Timings(image_encode_ms=1.5, prompt_ms=2.5, generate_ms=3.5)
    # A reason outside pagescribe's vocabulary still ended the text; an answer without a model gets the id.
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("Prices", ["Widget 10 EUR"])])
    [record] = run(pdf, tmp_path / "out", client, model_id="the-server")
    assert (record.text, record.finish_reason, record.model) == ("Widgets.", "stop", "the-server")


def test_a_pdf_converts_through_the_real_server_app(served: Client, engine: FakeEngine, tmp_path: Path) -> None:
    pdf = twelve_page_pdf(tmp_path / "report.pdf")
    records = run(pdf, tmp_path / "out", served, pages=[1, 2, 3], concurrency=2)
    assert [r.status for r in records] == ["ok", "ok", "ok"]
    assert {r.model for r in records} == {"served-model"} and {r.text for r in records} == {engine.reply}
    [image] = engine.requests[0].images
    assert max(image.width, image.height) == 1344
    assert engine.requests[0].messages[-1].text.startswith(PROMPT.text)


def test_a_server_failure_is_not_cached_so_a_rerun_asks_again(
    served: Client, engine: FakeEngine, tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("Prices", ["Widget 10 EUR"])])
    backend = served
    engine.fail_on = PROMPT.text[:40]
    [failed] = run(pdf, tmp_path / "out", backend)
    assert (failed.status, failed.reason, failed.attempts) == ("failed", "backend_error", 2)
    assert failed.error == "attempt 1: EngineError: internal error; attempt 2: EngineError: internal error"
    engine.fail_on = None
    [done] = run(pdf, tmp_path / "out", backend)
    assert (done.status, done.text, done.cached) == ("ok", engine.reply, False)
    assert len(engine.requests) == 3


def test_an_unreachable_server_is_not_cached_either(served: Client, engine: FakeEngine, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("Prices", ["Widget 10 EUR"])])
    nobody = Client.for_url(f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(attempts=1))
    [failed] = run(pdf, tmp_path / "out", nobody, model_id=URL)
    assert failed.status == "failed" and "Unreachable: cannot reach http://127.0.0.1" in (failed.error or "")
    [done] = run(pdf, tmp_path / "out", served, model_id=URL)
    assert (done.status, done.cached, len(engine.requests)) == ("ok", False, 1)


def test_a_page_the_server_refuses_keeps_its_message_and_is_not_sent_again(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("Prices", ["Widget 10 EUR"])])
    engine = FakeEngine()
    app = create_app(ServerSettings(log_level="error", max_body_bytes=10_000), engine)
    with TestClient(app, base_url=URL) as http:
        backend = Client.for_url(URL, http_client=http)
        [refused] = run(pdf, tmp_path / "out", backend)
        [again] = run(pdf, tmp_path / "out", backend)
    assert (refused.status, refused.reason) == ("failed", "backend_error")
    assert "PayloadTooLarge" in (refused.error or "") and "over the limit of 10,000 bytes" in (refused.error or "")
    assert again.cached and (again.status, again.error) == (refused.status, refused.error)
    assert engine.requests == []


def test_text_that_looks_like_an_image_marker_is_refused_before_sending(served: Client, engine: FakeEngine) -> None:
    with pytest.raises(InvalidRequest, match="<ImageHere>, which marks an image"):
        served.generate(page_request(anchor="see <ImageHere> below"))
    assert engine.requests == []


# -- `pagescribe convert --url / --endpoint` against a server on loopback ------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer[FakeEngine]]:
    with LiveServer(FakeEngine(model_name="served-model")) as server:
        yield server


@pytest.fixture
def aws(live: LiveServer[FakeEngine], monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 calls go to the live server with dummy credentials; nothing of this machine's AWS setup is read."""
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credentials: fail at once, not after IMDS
    for name, value in sagemaker_env(live.url).items():
        monkeypatch.setenv(name, value)


def convert(pdf: Path, out: Path, *args: str) -> Result:
    args = ("--progress", "quiet", "--route", "vlm", *args)
    return CliRunner().invoke(main, ["convert", str(pdf), "--out", str(out), *args])


@pytest.mark.parametrize("target", ["--url", "--endpoint"])
def test_convert_sends_the_pages_to_a_server_or_an_endpoint(
    live: LiveServer[FakeEngine], aws: None, tmp_path: Path, target: str
) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("One", ["first"]), text_page("Two", ["second"])])
    args = [target, live.url] if target == "--url" else [target, ENDPOINT, "--region", "eu-west-1"]
    before = len(live.engine.requests)
    result = convert(pdf, tmp_path / "out", *args, "--timeout", "30")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    records = read_jsonl(tmp_path / "out" / "a.jsonl")
    assert [(r["page"], r["status"], r["model"], r["text"]) for r in records] == [
        (1, "ok", "served-model", live.engine.reply),
        (2, "ok", "served-model", live.engine.reply),
    ]
    assert len(live.engine.requests) - before == 2


def test_convert_without_aws_credentials_says_so_and_a_rerun_with_them_finishes(
    live: LiveServer[FakeEngine], aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("One", ["first"])])
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    failed = convert(pdf, tmp_path / "out", "--endpoint", ENDPOINT)
    assert failed.exit_code == 1
    [record] = read_jsonl(tmp_path / "out" / "a.jsonl")
    assert record["status"] == "failed" and "Unable to locate credentials" in record["error"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    done = convert(pdf, tmp_path / "out", "--endpoint", ENDPOINT)
    assert done.exit_code == 0, done.output
    assert [r["status"] for r in read_jsonl(tmp_path / "out" / "a.jsonl")] == ["ok"]


def test_an_unknown_aws_profile_stops_convert_before_any_page(aws: None, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("One", ["first"])])
    result = convert(pdf, tmp_path / "out", "--endpoint", ENDPOINT, "--profile", "no-such-profile")
    assert result.exit_code == 1 and "no-such-profile" in result.stderr
    assert not (tmp_path / "out").exists()
