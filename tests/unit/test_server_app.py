"""The app in-process (httpx ASGITransport + lifespan) with FakeEngine: routes, formats, streaming, batches.

``serve`` and the payload helpers here are imported by the other ``test_server_*`` files.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from botocore.eventstream import EventStreamBuffer
from PIL import Image

from pagescribe.engine.base import Engine
from pagescribe.engine.fake import FakeEngine
from pagescribe.server import ServerSettings, create_app
from pagescribe.types import ImagePart, TextPart

REPLY = "The process flow starts with X then we have Y and Z."


def png_b64(size: tuple[int, int] = (8, 6), color: tuple[int, int, int] = (200, 10, 10)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def dialog(content: str = "<ImageHere>Describe this page.", **params: Any) -> dict[str, Any]:
    """The first clients' payload."""
    parameters = {"max_tokens": 1024, "top_p": 0.8, "temperature": 1.0, "repeat_penalty": 1.005, **params}
    return {"inputs": [[{"role": "user", "content": content, "image": png_b64()}]], "parameters": parameters}


@asynccontextmanager
async def serve(
    engine: Engine | None = None, *, wait_ready: bool = True, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for a freshly created app, its lifespan running (and the model loaded, unless told not to)."""
    app = create_app(ServerSettings(**settings), engine or FakeEngine())
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://sm") as client,
    ):
        if wait_ready:
            await wait_for_ping(client, 200)
        yield client


async def wait_for_ping(client: httpx.AsyncClient, status: int, timeout: float = 5.0) -> httpx.Response:
    end = time.monotonic() + timeout
    while True:
        response = await client.get("/ping")
        if response.status_code == status or time.monotonic() > end:
            return response
        await asyncio.sleep(0.01)


async def wait_for_state(client: httpx.AsyncClient, state: str, timeout: float = 5.0) -> httpx.Response:
    """Poll ``/ping`` until its body says ``state`` (e.g. "failed")."""
    end = time.monotonic() + timeout
    while True:
        response = await client.get("/ping")
        if response.json()["status"] == state or time.monotonic() > end:
            return response
        await asyncio.sleep(0.01)


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sse_events(text: str) -> list[Any]:
    data = [block.removeprefix("data: ") for block in text.split("\n\n") if block.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


# -- health ------------------------------------------------------------------------------------------------


async def test_ping_is_503_loading_then_200_ready() -> None:
    async with serve(FakeEngine(load_delay_s=0.3), wait_ready=False) as client:
        first = await client.get("/ping")
        assert first.status_code == 503 and first.json()["status"] == "loading"
        ready = await wait_for_ping(client, 200)
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "model": "fake-model"}


async def test_a_model_that_fails_to_load_keeps_the_server_up_saying_why() -> None:
    engine = FakeEngine(load_error="/opt/ml/model: no text GGUF found")
    async with serve(engine, wait_ready=False) as client:
        ping = await wait_for_state(client, "failed")
        assert ping.status_code == 503
        assert ping.json()["status"] == "failed" and "no text GGUF found" in ping.json()["reason"]
        refused = await client.post("/invocations", json=dialog())
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        assert refused.json()["error"]["type"] == "model_not_ready"


# -- format A ----------------------------------------------------------------------------------------------


async def test_the_first_clients_payload_gets_a_jumpstart_style_answer() -> None:
    engine = FakeEngine()
    async with serve(engine) as client:
        response = await client.post("/invocations", json=dialog())
    assert engine.closed  # the lifespan's end released the model
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    [answer] = response.json()
    assert answer["generation"] == {"role": "assistant", "content": REPLY}
    assert answer["generated_text"] == REPLY and answer["finish_reason"] == "stop"
    assert answer["model"] == "fake-model"
    assert answer["usage"]["completion_tokens"] == len(REPLY.split())
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + len(REPLY.split())
    assert set(answer["timings"]) == {"image_encode_ms", "prompt_ms", "generate_ms"}


async def test_two_dialogs_get_two_answers_in_order() -> None:
    engine = FakeEngine(replies=["answer one", "answer two"])
    body = {"inputs": [[{"role": "user", "content": "first"}], [{"role": "user", "content": "second"}]]}
    async with serve(engine) as client:
        response = await client.post("/invocations", json=body)
    assert [a["generated_text"] for a in response.json()] == ["answer one", "answer two"]
    assert [r.messages[0].text for r in engine.requests] == ["first", "second"]


async def test_image_here_in_the_middle_reaches_the_engine_in_place() -> None:
    engine = FakeEngine()
    async with serve(engine) as client:
        await client.post("/invocations", json=dialog("Look at <ImageHere> and describe it."))
    [request] = engine.requests
    parts = request.messages[0].parts
    assert (
        parts[0] == TextPart("Look at ")
        and isinstance(parts[1], ImagePart)
        and parts[2] == TextPart(" and describe it.")
    )
    assert (parts[1].image.width, parts[1].image.height) == (8, 6)


async def test_stream_true_sends_token_lines_then_the_answer() -> None:
    async with serve() as client:
        response = await client.post("/invocations", json=dialog(stream=True))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/jsonlines")
    *tokens, final = json_lines(response.text)
    assert all(set(t) == {"token", "index"} for t in tokens)
    assert "".join(t["token"]["text"] for t in tokens) == final["generated_text"] == REPLY
    assert final["finish_reason"] == "stop" and final["usage"]["completion_tokens"] == len(tokens)


async def test_streamed_dialogs_come_one_after_the_other() -> None:
    engine = FakeEngine(replies=["a b", "c d"])
    body = {
        "inputs": [[{"role": "user", "content": "1"}], [{"role": "user", "content": "2"}]],
        "parameters": {"stream": True},
    }
    async with serve(engine) as client:
        lines = json_lines((await client.post("/invocations", json=body)).text)
    finals = [line for line in lines if "generated_text" in line]
    assert [(f["index"], f["generated_text"]) for f in finals] == [(0, "a b"), (1, "c d")]
    assert [line["index"] for line in lines] == sorted(line["index"] for line in lines)


async def test_a_one_second_budget_returns_partial_text_with_time_limit() -> None:
    engine = FakeEngine(reply=" ".join(["word"] * 500), token_delay_s=0.01)
    async with serve(engine) as client:
        started = time.monotonic()
        response = await client.post("/invocations", json=dialog(max_tokens=100000, time_limit_s=1))
        elapsed = time.monotonic() - started
    [answer] = response.json()
    assert answer["finish_reason"] == "time_limit"
    assert 0 < answer["usage"]["completion_tokens"] < 500
    assert answer["generated_text"] == " ".join(["word"] * answer["usage"]["completion_tokens"])
    assert elapsed < 2.5


async def test_the_default_time_limit_comes_from_settings() -> None:
    engine = FakeEngine(reply=" ".join(["w"] * 200), token_delay_s=0.01)
    async with serve(engine, time_limit_s=0.3) as client:
        [answer] = (await client.post("/invocations", json=dialog())).json()
    assert answer["finish_reason"] == "time_limit" and answer["generated_text"]


async def test_max_tokens_ends_with_length() -> None:
    async with serve() as client:
        body = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"max_new_tokens": 3}}
        [answer] = (await client.post("/invocations", json=body)).json()
    assert (answer["finish_reason"], answer["generated_text"]) == ("length", "The process flow")


# -- format B ----------------------------------------------------------------------------------------------


def chat(stream: bool = False, **extra: Any) -> dict[str, Any]:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png_b64()}}
    content = [{"type": "text", "text": "Describe."}, image]
    return {"model": "any", "messages": [{"role": "user", "content": content}], "stream": stream, **extra}


async def test_chat_completions_answers_with_a_completion_object() -> None:
    async with serve() as client:
        response = await client.post("/v1/chat/completions", json=chat())
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == REPLY
    assert body["choices"][0]["finish_reason"] == "stop" and body["model"] == "fake-model"


async def test_the_same_chat_body_works_on_invocations() -> None:
    async with serve() as client:
        response = await client.post("/invocations", json=chat())
    assert response.json()["choices"][0]["message"]["content"] == REPLY


async def test_chat_streams_server_sent_events_ending_in_done() -> None:
    async with serve() as client:
        response = await client.post(
            "/v1/chat/completions", json=chat(stream=True, stream_options={"include_usage": True})
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    deltas = [e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]]
    assert "".join(deltas) == REPLY
    assert [e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]][-1] == "stop"
    assert events[-2]["usage"]["completion_tokens"] == len(REPLY.split())


async def test_models_lists_the_loaded_model() -> None:
    async with serve() as client:
        body = (await client.get("/v1/models")).json()
    assert [m["id"] for m in body["data"]] == ["fake-model"]


# -- batch transform ----------------------------------------------------------------------------------------


async def test_execution_parameters_for_batch_transform() -> None:
    async with serve(FakeEngine(n_slots=2), max_body_bytes=8 * 1024 * 1024) as client:
        body = (await client.get("/execution-parameters")).json()
    assert body == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 8}


async def test_json_lines_batch_gives_one_line_per_record_even_when_one_is_bad() -> None:
    records = [
        json.dumps({"inputs": [[{"role": "user", "content": "one"}]]}),
        '{"inputs": [[{"role": "user", "content": "two"}]], "parameters": {"temprature": 1}}',
        json.dumps(chat()),
    ]
    async with serve(FakeEngine(n_slots=2)) as client:
        response = await client.post(
            "/invocations",
            content="\n".join(records) + "\n",
            headers={"Content-Type": "application/jsonlines"},
        )
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/jsonlines")
    first, second, third = json_lines(response.text)
    assert first[0]["generated_text"] == REPLY
    assert second["error"]["type"] == "invalid_request_error" and "temprature" in second["error"]["message"]
    assert third["choices"][0]["message"]["content"] == REPLY


# -- the SageMaker runtime paths ----------------------------------------------------------------------------


async def test_runtime_invoke_path_answers_like_invocations() -> None:
    async with serve() as client:
        response = await client.post("/endpoints/my-endpoint/invocations", json=dialog())
    assert response.json()[0]["generation"]["content"] == REPLY
    assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"


async def test_runtime_errors_are_wrapped_as_model_error_with_the_original() -> None:
    async with serve() as client:
        response = await client.post(
            "/endpoints/e/invocations", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 424 and response.headers["x-amzn-errortype"] == "ModelError"
    body = response.json()
    assert body["OriginalStatusCode"] == 400
    assert json.loads(body["OriginalMessage"])["error"]["type"] == "invalid_request_error"


async def test_runtime_stream_path_frames_the_stream_as_payload_parts() -> None:
    async with serve() as client:
        response = await client.post("/endpoints/e/invocations-response-stream", json=dialog(stream=True))
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["x-amzn-sagemaker-content-type"] == "application/jsonlines"
    buffer = EventStreamBuffer()
    buffer.add_data(response.content)
    messages = list(buffer)
    assert {m.headers[":event-type"] for m in messages} == {"PayloadPart"}
    *tokens, final = json_lines(b"".join(m.payload for m in messages).decode())
    assert "".join(t["token"]["text"] for t in tokens) == final["generated_text"] == REPLY
