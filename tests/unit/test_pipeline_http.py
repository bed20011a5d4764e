"""The HTTP backend: pages go to a pagescribe server as format A and come back as results."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import InvalidRequest, ServiceUnavailable
from pagescribe.pipeline import ConvertOptions, convert
from pagescribe.pipeline.http import HttpBackend, request_body
from pagescribe.pipeline.render import RenderedPage
from pagescribe.pipeline.transcribe import DEFAULT_PARAMS, build_request
from pagescribe.prompts import load_prompt
from pagescribe.server.app import create_app
from pagescribe.server.settings import ServerSettings
from pagescribe.types import GenerationRequest, ImageInput
from pdfgen import twelve_page_pdf

PROMPT = load_prompt()


def sample_request(anchor: str | None = None) -> tuple[ImageInput, GenerationRequest]:
    image = ImageInput(4, 2, bytes(range(24)))
    page = RenderedPage(Path("a.pdf"), 1, 1, image, "text")
    return image, build_request(PROMPT, page, params=DEFAULT_PARAMS, anchor=anchor)


def test_the_body_is_one_format_a_dialog_with_the_image_where_the_marker_is() -> None:
    _, request = sample_request(anchor="Page text: Widget")
    body = request_body(request)
    [[message]] = body["inputs"]
    assert message["role"] == "user"
    assert message["content"] == f"{PROMPT.text}\n<ImageHere>\nPage text: Widget"
    assert isinstance(message["image"], str)
    assert body["parameters"]["temperature"] == 0.0 and body["parameters"]["seed"] == DEFAULT_PARAMS.seed
    assert body["parameters"]["max_tokens"] == DEFAULT_PARAMS.max_tokens


def test_a_pdf_converts_through_a_real_server_app(tmp_path: Path) -> None:
    pdf = twelve_page_pdf(tmp_path / "report.pdf")
    engine = FakeEngine(model_name="served-model")
    with TestClient(create_app(ServerSettings(), engine)) as client:
        backend = HttpBackend("http://testserver", client=client, concurrency=2)
        records = list(convert([pdf], out_dir=tmp_path / "out", backend=backend,
                               options=ConvertOptions(pages=[1, 2, 3])))  # fmt: skip
    assert [r.status for r in sorted(records, key=lambda r: r.page or 0)] == ["ok", "ok", "ok"]
    assert {r.model for r in records} == {"served-model"} and backend.model_id == "served-model"
    assert {r.text for r in records} == {engine.reply}
    [image] = engine.requests[0].images
    assert max(image.width, image.height) == 1344
    assert engine.requests[0].messages[-1].text.startswith(PROMPT.text)


def mock_backend(handler: httpx.MockTransport) -> HttpBackend:
    return HttpBackend("http://server:8080/invocations", client=httpx.Client(transport=handler),
                       retries=2, backoff_s=0.01, model_id="m")  # fmt: skip


def test_a_busy_server_is_retried_after_the_time_it_asks_for() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"type": "overloaded",
                                  "message": "queue full"}})  # fmt: skip
        answer = {"generated_text": "ok text", "finish_reason": "stop", "model": "m",
                  "usage": {"prompt_tokens": 3, "completion_tokens": 2}}  # fmt: skip
        return httpx.Response(200, json=[answer])

    _, request = sample_request()
    result = mock_backend(httpx.MockTransport(handler)).generate(request)
    assert (result.text, result.usage.total_tokens, len(calls)) == ("ok text", 5, 2)


def test_an_error_body_becomes_the_servers_exception_and_a_dead_server_a_clear_one() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["inputs"][0][0]["content"].endswith("<ImageHere>")
        return httpx.Response(400, json={"error": {"type": "invalid_request_error", "message": "bad seed"}})

    _, request = sample_request()
    with pytest.raises(InvalidRequest, match="bad seed"):
        mock_backend(httpx.MockTransport(refuse)).generate(request)

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    backend = mock_backend(httpx.MockTransport(unreachable))
    with pytest.raises(ServiceUnavailable, match="cannot reach http://server:8080/invocations"):
        backend.generate(request)
