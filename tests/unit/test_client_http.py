"""The HTTP transport against scripted answers (httpx.MockTransport) and the real app (fake engine)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.testclient import TestClient
from test_client_support import answer, page_png

from pagescribe.client import Client, DescribeResult, ResponseTimeout, RetryPolicy, Unreachable, retry
from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import (
    ContextOverflow,
    EngineError,
    ImageError,
    ImageTooLarge,
    InvalidRequest,
    NotReady,
    Overloaded,
    PagescribeError,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from pagescribe.server.app import create_app
from pagescribe.server.settings import ServerSettings
from pagescribe.types import Timings, Usage
from pagescribe.wire.errors import error_body, error_headers, kind_of

URL = "http://model.test:8080"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(retry, "_sleep", waits.append)
    return waits


class Recorder:
    """Answers with the next of ``replies`` (the last repeats) and keeps every request."""

    def __init__(self, *replies: httpx.Response | Exception | Handler) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def client(self, url: str = URL, **options: object) -> Client:
        return Client.for_url(url, http_client=httpx.Client(transport=httpx.MockTransport(self)), **options)  # type: ignore[arg-type]


def err(exc: PagescribeError) -> httpx.Response:
    """The answer the server gives for ``exc`` (status, envelope and headers from the shared table)."""
    return httpx.Response(kind_of(exc).status, json=error_body(exc), headers=error_headers(exc))


def test_describe_posts_format_a_and_returns_the_typed_result() -> None:
    server = Recorder(httpx.Response(200, json=answer("Invoice 42 from ACME.")))
    png = page_png()
    with server.client() as client:
        result = client.describe(png, prompt="Describe.", max_tokens=1024, top_p=0.8, repeat_penalty=1.005)
    assert result == DescribeResult(
        text="Invoice 42 from ACME.",
        finish_reason="stop",
        usage=Usage(600, 5),
        timings=Timings(1.5, 2.5, 3.5),
        model="pagescribe-test",
    )
    [request] = server.requests
    assert request.url == f"{URL}/invocations" and request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body == {
        "inputs": [[{"role": "user", "content": "Describe.", "image": base64.b64encode(png).decode()}]],
        "parameters": {"max_tokens": 1024, "top_p": 0.8, "repeat_penalty": 1.005},
    }


def test_cached_prompt_tokens_are_read_from_the_usage_details() -> None:
    usage = {"prompt_tokens": 600, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 590}}
    with Recorder(httpx.Response(200, json=answer(usage=usage))).client() as client:
        assert client.describe(page_png()).usage == Usage(600, 5, cached_tokens=590)


def test_the_default_prompt_is_the_document_prompt_and_an_invocations_url_is_used_as_is() -> None:
    from pagescribe.prompts import load_prompt

    server = Recorder(httpx.Response(200, json=answer()))
    with server.client(f"{URL}/invocations/") as client:
        client.describe(page_png())
    [request] = server.requests
    assert request.url == f"{URL}/invocations"
    assert json.loads(request.content)["inputs"][0][0]["content"] == load_prompt("document").text


def test_503_twice_then_200_is_retried_to_success_honouring_retry_after(slept: list[float]) -> None:
    server = Recorder(
        err(Overloaded("queue full", retry_after_s=3)), err(NotReady("loading")), httpx.Response(200, json=answer("ok"))
    )
    with server.client() as client:
        assert client.describe(page_png()).text == "ok"
    assert len(server.requests) == 3
    # Retry-After: 3 for the full queue, 1 for the loading model (the server's headers), plus a little jitter.
    assert len(slept) == 2 and 3.0 <= slept[0] <= 3.3 and 1.0 <= slept[1] <= 1.1


def test_429_is_retried_and_when_retries_run_out_the_servers_error_is_raised(slept: list[float]) -> None:
    server = Recorder(httpx.Response(429, json={"error": {"type": "overloaded", "message": "slow down"}}))
    with server.client(retry=RetryPolicy(attempts=3)) as client, pytest.raises(Overloaded, match=r"^slow down$"):
        client.describe(page_png())
    assert len(server.requests) == 3 and len(slept) == 2


def test_a_400_is_not_retried_and_its_message_is_kept_verbatim(slept: list[float]) -> None:
    message = "unknown parameter(s): parameters.beam_width"
    server = Recorder(err(InvalidRequest(message, param="parameters.beam_width")))
    with server.client() as client, pytest.raises(InvalidRequest) as caught:
        client.describe(page_png())
    assert caught.value.message == message and caught.value.param == "parameters.beam_width"
    assert len(server.requests) == 1 and slept == []


@pytest.mark.parametrize(
    "exc",
    [
        InvalidRequest("bad field", param="inputs"),
        ImageError("inputs[0][0].image: truncated or corrupt PNG", param="inputs[0][0].image"),
        ContextOverflow("the prompt is 5000 tokens, the context 4096"),
        PayloadTooLarge("the request body is 40,000,000 bytes", param="body"),
        ImageTooLarge("image is 100000x100000 pixels"),
        UnsupportedMediaType("content type 'text/plain' is not supported", param="Content-Type"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_every_refusal_comes_back_as_the_exception_the_server_raised(exc: PagescribeError) -> None:
    server = Recorder(err(exc))
    with server.client() as client, pytest.raises(PagescribeError) as caught:
        client.describe(page_png())
    assert type(caught.value) is type(exc)
    assert (caught.value.message, caught.value.param) == (exc.message, exc.param)


@pytest.mark.parametrize("exc", [Overloaded("full"), NotReady("loading"), ServiceUnavailable("later")])
def test_every_try_again_error_comes_back_typed_once_retries_run_out(exc: PagescribeError) -> None:
    with Recorder(err(exc)).client(retry=RetryPolicy(attempts=2)) as client, pytest.raises(PagescribeError) as caught:
        client.describe(page_png())
    assert type(caught.value) is type(exc) and caught.value.message == exc.message


def test_a_server_defect_is_an_engine_error_saying_internal_error() -> None:
    with Recorder(err(EngineError("segfault details"))).client() as client, pytest.raises(EngineError) as caught:
        client.describe(page_png())
    assert caught.value.message == "internal error"


def test_a_proxy_page_instead_of_json_is_retried_then_reported_with_its_status(slept: list[float]) -> None:
    page = httpx.Response(502, text="<html><body><h1>502 Bad Gateway</h1></body></html>")
    with Recorder(page).client(retry=RetryPolicy(attempts=2)) as client, pytest.raises(ServiceUnavailable) as caught:
        client.describe(page_png())
    assert (
        caught.value.message.startswith(f"{URL}/invocations answered 502: ") and "Bad Gateway" in caught.value.message
    )


def test_a_wrong_url_says_what_answered() -> None:
    not_found = httpx.Response(404, json={"detail": "Not Found"})
    with Recorder(not_found).client() as client, pytest.raises(InvalidRequest, match="answered 404"):
        client.describe(page_png())


def test_connection_failures_are_retried_then_reported_as_unreachable(slept: list[float]) -> None:
    server = Recorder(httpx.ConnectError("Connection refused"))
    with server.client(retry=RetryPolicy(attempts=3)) as client, pytest.raises(Unreachable, match="Connection refused"):
        client.describe(page_png())
    assert len(server.requests) == 3 and len(slept) == 2


def test_a_dropped_keep_alive_connection_is_retried(slept: list[float]) -> None:
    server = Recorder(
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, json=answer("ok")),
    )
    with server.client() as client:
        assert client.describe(page_png()).text == "ok"


def test_a_read_timeout_is_not_retried_since_the_page_may_be_generating(slept: list[float]) -> None:
    server = Recorder(httpx.ReadTimeout("timed out"))
    with server.client() as client, pytest.raises(ResponseTimeout, match="read timeout"):
        client.describe(page_png())
    assert len(server.requests) == 1 and slept == []


def test_bad_parameters_are_refused_before_anything_is_sent() -> None:
    server = Recorder(httpx.Response(200, json=answer()))
    with server.client() as client:
        with pytest.raises(InvalidRequest, match=r"parameters.top_p"):
            client.describe(page_png(), top_p=3.0)
        with pytest.raises(InvalidRequest, match=r"unknown parameter\(s\): parameters.beams"):
            client.describe(page_png(), beams=4)  # type: ignore[call-arg]
    assert server.requests == []


def lines(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_stream_yields_pieces_in_order_and_keeps_the_final_result() -> None:
    final = {**answer("Hello page")[0], "index": 0}
    data = lines({"token": {"text": "Hello"}, "index": 0}, {"token": {"text": " page"}, "index": 0}, final)
    # Lines split across chunks anywhere must still decode.
    server = Recorder(httpx.Response(200, content=chunked(data, 7), headers={"content-type": "application/jsonlines"}))
    with server.client() as client, client.stream(page_png(), max_tokens=8) as stream:
        assert list(stream) == ["Hello", " page"]
    assert stream.result.text == "Hello page" and stream.result.usage.completion_tokens == 5
    assert json.loads(server.requests[0].content)["parameters"] == {"max_tokens": 8, "stream": True}


def test_an_error_line_mid_stream_is_raised_as_its_exception_after_the_text_so_far() -> None:
    data = lines({"token": {"text": "Hel"}}, {"error": {"type": "server_error", "message": "internal error"}})
    with Recorder(httpx.Response(200, content=data)).client() as client:
        stream = client.stream(page_png())
        assert next(stream) == "Hel"
        with pytest.raises(EngineError, match="internal error"):
            next(stream)
        with pytest.raises(RuntimeError, match="has not ended"):
            _ = stream.result


def test_a_stream_cut_short_is_an_engine_error() -> None:
    server = Recorder(httpx.Response(200, content=lines({"token": {"text": "Hel"}})))
    with server.client() as client, pytest.raises(EngineError, match="before the final answer"):
        list(client.stream(page_png()))


def test_a_stream_refused_before_it_began_raises_at_the_call_and_retries_busy_answers(slept: list[float]) -> None:
    server = Recorder(err(Overloaded("full")), err(ImageError("not an image", param="inputs[0][0].image")))
    with server.client() as client, pytest.raises(ImageError, match="not an image"):
        client.stream(page_png())
    assert len(server.requests) == 2


def test_against_the_real_app_with_the_fake_engine_plain_streamed_and_refused() -> None:
    engine = FakeEngine(reply="one two three four")
    app = create_app(ServerSettings(log_level="error"), engine)
    with TestClient(app, base_url=URL) as http, Client.for_url(URL, http_client=http) as client:
        result = client.describe(page_png(), prompt="Read it.", max_tokens=3)
        with client.stream([page_png(), page_png(text="2")], prompt="<ImageHere> and <ImageHere>") as stream:
            pieces = list(stream)
        with pytest.raises(InvalidRequest, match="2 <ImageHere> marker"):
            client.describe(page_png(), prompt="<ImageHere><ImageHere>")
    assert (result.text, result.finish_reason, result.model) == ("one two three", "length", "fake-model")
    assert pieces == ["one", " two", " three", " four"] and stream.result.text == "one two three four"
    first, second = engine.requests[:2]
    assert first.messages[0].text == "Read it." and len(first.images) == 1 and first.params.max_tokens == 3
    assert [type(p).__name__ for p in second.messages[0].parts] == ["ImagePart", "TextPart", "ImagePart"]


def test_model_id_comes_from_the_servers_model_list_and_is_none_when_it_will_not_say() -> None:
    app = TestClient(create_app(ServerSettings(), FakeEngine(model_name="llava-7b-q4")))
    with app:
        client = Client.for_url("http://testserver", http_client=app)
        assert client.model_id() == "llava-7b-q4"
    assert Recorder(httpx.Response(404, json={})).client().model_id() is None
    assert Recorder(httpx.ConnectError("down")).client().model_id() is None
