"""The SageMaker transport: real boto3 against a scripted runtime on loopback.

It proves the split of retries: botocore retries the runtime's own failures, the client retries what the
container says (429/503 inside a ModelError), and neither retries what the other already did.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.responses import JSONResponse, Response, StreamingResponse
from test_client_support import ScriptedServer, answer, ok, page_png, scripted_server

from pagescribe.client import Client, ClientConfigError, ResponseTimeout, RetryPolicy, Unreachable, retry
from pagescribe.errors import EngineError, ImageError, NotReady, Overloaded, ServiceUnavailable
from pagescribe.wire import eventstream
from servers import sagemaker_env

ENDPOINT = "text-vision-llm-model-7B-image2text"


@pytest.fixture(scope="module")
def runtime() -> Iterator[ScriptedServer]:
    yield from scripted_server()


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch, runtime: ScriptedServer) -> None:
    for name in ("AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in sagemaker_env(runtime.url).items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(retry, "_sleep", waits.append)
    return waits


def container_error(status: int, type_: str, message: str) -> Response:
    """What the SageMaker runtime answers when the container answered ``status``: a 424 ModelError."""
    original = json.dumps({"error": {"type": type_, "message": message, "param": None}})
    body = {
        "Message": f'Received error ({status}) from primary with message "{original}".',
        "OriginalStatusCode": status,
        "OriginalMessage": original,
        "LogStreamArn": "",
    }
    return JSONResponse(body, status_code=424, headers={"x-amzn-ErrorType": "ModelError"})


def runtime_error(status: int, code: str, message: str) -> Response:
    """A failure of the SageMaker runtime itself (not the container's answer)."""
    return JSONResponse({"message": message}, status_code=status, headers={"x-amzn-ErrorType": code})


def events(*chunks: bytes, error: bytes | None = None) -> Response:
    frames = b"".join(frame for chunk in chunks for frame in eventstream.payload_parts(chunk))
    return Response(frames + (error or b""), media_type=eventstream.MEDIA_TYPE)


def test_describe_calls_invoke_endpoint_with_format_a(runtime: ScriptedServer) -> None:
    runtime.play(ok("An invoice."))
    with Client.for_endpoint(ENDPOINT) as client:
        result = client.describe(page_png(), prompt="Describe.", max_tokens=1024, temperature=1.0)
    assert (result.text, result.usage.prompt_tokens, result.model) == ("An invoice.", 600, "pagescribe-test")
    [seen] = runtime.seen
    assert seen.path == f"/endpoints/{ENDPOINT}/invocations"
    assert seen.headers["content-type"] == "application/json" and "pagescribe/" in seen.headers["user-agent"]
    assert seen.json()["parameters"] == {"max_tokens": 1024, "temperature": 1.0}
    assert seen.json()["inputs"][0][0]["content"] == "Describe."


def test_a_busy_container_is_retried_by_the_client_and_botocore_adds_no_retries(
    runtime: ScriptedServer, slept: list[float]
) -> None:
    busy = container_error(503, "overloaded", "the queue is full")
    runtime.play(busy, container_error(503, "model_not_ready", "loading"), ok("finally"))
    with Client.for_endpoint(ENDPOINT) as client:
        assert client.describe(page_png()).text == "finally"
    assert len(runtime.seen) == 3 and len(slept) == 2


def test_the_runtimes_own_503_is_retried_by_botocore_only(runtime: ScriptedServer, slept: list[float]) -> None:
    runtime.play(runtime_error(503, "ServiceUnavailable", "the service is unavailable"))
    with Client.for_endpoint(ENDPOINT) as client, pytest.raises(ServiceUnavailable, match="unavailable"):
        client.describe(page_png())
    assert len(runtime.seen) == 3  # botocore's standard mode: 3 attempts in all
    assert slept == []  # and no second layer of retries on top


def test_model_not_ready_is_retried_by_the_client(runtime: ScriptedServer, slept: list[float]) -> None:
    runtime.play(runtime_error(429, "ModelNotReadyException", "the model is not ready"))
    with Client.for_endpoint(ENDPOINT, retry=RetryPolicy(attempts=2)) as client, pytest.raises(NotReady):
        client.describe(page_png())
    assert len(runtime.seen) == 2 and len(slept) == 1


def test_a_refused_request_comes_back_verbatim_and_is_not_retried(runtime: ScriptedServer, slept: list[float]) -> None:
    message = "inputs[0][0].image: truncated or corrupt PNG: image file is truncated"
    runtime.play(container_error(400, "invalid_image", message))
    with Client.for_endpoint(ENDPOINT) as client, pytest.raises(ImageError) as caught:
        client.describe(page_png())
    assert caught.value.message == message
    assert len(runtime.seen) == 1 and slept == []


def test_stream_reads_event_stream_parts_even_when_a_line_is_split(runtime: ScriptedServer) -> None:
    data = b'{"token":{"text":"Hi"}}\n{"token":{"text":" there"}}\n' + json.dumps(answer("Hi there")[0]).encode()
    runtime.play(events(data[:10], data[10:31], data[31:]))
    with Client.for_endpoint(ENDPOINT) as client, client.stream(page_png(), max_tokens=9) as stream:
        assert list(stream) == ["Hi", " there"]
    assert stream.result.text == "Hi there"
    [seen] = runtime.seen
    assert seen.path == f"/endpoints/{ENDPOINT}/invocations-response-stream"
    assert seen.json()["parameters"] == {"max_tokens": 9, "stream": True}


def test_a_model_stream_error_is_raised_typed_after_the_text_so_far(runtime: ScriptedServer) -> None:
    envelope = json.dumps({"error": {"type": "overloaded", "message": "shutting down"}})
    failure = eventstream.model_stream_error(envelope, error_code="overloaded")
    runtime.play(events(b'{"token":{"text":"Par"}}\n', error=failure))
    with Client.for_endpoint(ENDPOINT) as client:
        stream = client.stream(page_png())
        assert next(stream) == "Par"
        with pytest.raises(Overloaded, match="shutting down"):
            next(stream)


def test_a_plain_text_model_stream_error_is_an_engine_error_with_its_message(runtime: ScriptedServer) -> None:
    failure = eventstream.model_stream_error("timed out", error_code="ModelInvocationTimeExceeded")
    runtime.play(events(b'{"token":{"text":"Par"}}\n', error=failure))
    with Client.for_endpoint(ENDPOINT) as client, pytest.raises(EngineError) as caught:
        list(client.stream(page_png()))
    assert caught.value.message == f"endpoint '{ENDPOINT}': ModelStreamError: timed out"


def test_an_endpoint_nobody_listens_on_is_unreachable_after_botocores_retries_only(
    monkeypatch: pytest.MonkeyPatch, slept: list[float]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{port}")
    with Client.for_endpoint(ENDPOINT, connect_timeout_s=1) as client, pytest.raises(Unreachable):
        client.describe(page_png())
    assert slept == []


def test_a_missing_region_or_profile_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ClientConfigError, match="region"):
        Client.for_endpoint(ENDPOINT)
    with pytest.raises(ClientConfigError, match="no-such-profile"):
        Client.for_endpoint(ENDPOINT, region="us-east-1", profile="no-such-profile")


def test_a_stream_that_goes_quiet_past_the_read_timeout_is_a_response_timeout(runtime: ScriptedServer) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for frame in eventstream.payload_parts(b'{"token":{"text":"Par"}}\n'):
            yield frame
        await asyncio.sleep(3)

    runtime.play(lambda: StreamingResponse(parts(), media_type=eventstream.MEDIA_TYPE))
    with Client.for_endpoint(ENDPOINT, read_timeout_s=0.5) as client:
        stream = client.stream(page_png())
        assert next(stream) == "Par"
        with pytest.raises(ResponseTimeout, match="read timeout"):
            next(stream)
