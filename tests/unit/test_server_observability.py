"""What operators see: JSON log lines with request ids (and no prompt or image data), Prometheus metrics,
and an OpenAPI document that real answers conform to."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_server_app import dialog, png_b64, serve

from pagescribe.engine.fake import FakeEngine
from pagescribe.server.logging import JsonFormatter


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_logs_are_json_with_the_inference_id_and_never_prompt_or_image(captured: io.StringIO) -> None:
    image = png_b64(size=(31, 17))
    body = dialog("Describe this confidential page.")
    body["inputs"][0][0]["image"] = image
    async with serve() as client:
        response = await client.post("/invocations", json=body, headers={"X-Amzn-SageMaker-Inference-Id": "inf-123"})
    assert response.headers["X-Request-Id"] == "inf-123"
    lines = parsed(captured)
    [access] = [line for line in lines if line.get("route") == "/invocations"]
    assert access["request_id"] == "inf-123" and access["route"] == "/invocations" and access["status"] == 200
    assert access["completion_tokens"] > 0 and access["prompt_tokens"] > 0
    assert access["finish_reasons"] == ["stop"] and access["images"] == 1
    assert {"duration_ms", "generate_ms", "prompt_ms", "image_encode_ms"} <= set(access)
    everything = captured.getvalue()
    assert "confidential" not in everything and image[:40] not in everything


async def test_debug_logging_adds_the_prompt_text_but_still_no_image(captured: io.StringIO) -> None:
    image = png_b64(size=(29, 13))
    body = dialog("Describe this confidential page.")
    body["inputs"][0][0]["image"] = image
    async with serve(debug=True) as client:
        await client.post("/invocations", json=body)
    assert "confidential" in captured.getvalue() and image[:40] not in captured.getvalue()


async def test_refused_requests_are_logged_with_their_error_type(captured: io.StringIO) -> None:
    async with serve() as client:
        await client.post("/invocations", json={"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"x": 1}})
    [access] = [line for line in parsed(captured) if line.get("route") == "/invocations"]
    assert access["status"] == 400 and access["error"] == "invalid_request_error"


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_requests_tokens_and_time_limit_finishes() -> None:
    engine = FakeEngine(reply=" ".join(["w"] * 100), token_delay_s=0.01)
    async with serve(engine) as client:
        await client.post("/invocations", json=dialog(time_limit_s=0.2))
        await client.post("/invocations", json={"bad": 1})
        text = (await client.get("/metrics")).text
    samples = metric_samples(text)
    assert samples[("pagescribe_requests_total", (("route", "/invocations"), ("status", "200")))] == 1
    assert samples[("pagescribe_requests_total", (("route", "/invocations"), ("status", "400")))] == 1
    assert samples[("pagescribe_generations_total", (("finish_reason", "time_limit"),))] == 1
    assert samples[("pagescribe_completion_tokens_total", ())] > 0
    assert samples[("pagescribe_prompt_tokens_total", ())] > 0
    assert samples[("pagescribe_generate_seconds_count", ())] == 1
    assert samples[("pagescribe_queue_depth", ())] == 0 and samples[("pagescribe_busy_slots", ())] == 0
    assert samples[("pagescribe_model_ready", ())] == 1


async def test_each_app_has_its_own_registry() -> None:
    async with serve() as first, serve() as second:
        await first.post("/invocations", json=dialog())
        text = (await second.get("/metrics")).text
    assert (
        "pagescribe_requests_total",
        (("route", "/invocations"), ("status", "200")),
    ) not in metric_samples(text)


async def test_answers_conform_to_the_openapi_document() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    async with serve() as client:
        doc = (await client.get("/openapi.json")).json()
        answers = {
            ("/invocations", "post", "200"): await client.post("/invocations", json=dialog()),
            ("/v1/chat/completions", "post", "200"): await client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
            ),
            ("/invocations", "post", "400"): await client.post("/invocations", json={"inputs": 1}),
            ("/v1/chat/completions", "post", "400"): await client.post("/v1/chat/completions", json={"messages": 1}),
            ("/ping", "get", "200"): await client.get("/ping"),
            ("/v1/models", "get", "200"): await client.get("/v1/models"),
            ("/execution-parameters", "get", "200"): await client.get("/execution-parameters"),
        }
    assert doc["openapi"].startswith("3.1")
    for (path, method, status), response in answers.items():
        assert str(response.status_code) == status, (path, response.text)
        schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator({**schema, "components": doc["components"]})
        validator.validate(response.json())


async def test_openapi_request_schemas_reject_unknown_parameters() -> None:
    async with serve() as client:
        doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert schemas["Parameters"]["additionalProperties"] is False
    assert {"max_tokens", "max_new_tokens", "repeat_penalty", "time_limit_s"} <= set(
        schemas["Parameters"]["properties"]
    )
