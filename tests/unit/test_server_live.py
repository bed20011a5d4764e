"""Real clients against a real uvicorn server on loopback (FakeEngine): boto3, openai, disconnects, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamError
from test_server_app import REPLY, png_b64

from pagescribe.engine.base import Engine
from pagescribe.engine.fake import FakeEngine
from servers import LiveServer, free_port


@contextmanager
def live(engine: Engine | None = None, **settings: Any) -> Iterator[str]:
    """The real app on a thread, the model loaded; yields its base URL."""
    with LiveServer(engine or FakeEngine(), **settings) as server:
        yield server.url


def wait_ready(url: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no local AWS configuration: the endpoint URL is the only thing that matters."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):  # exact series: name, or name{labels}
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_unmodified_boto3_invoke_endpoint_gets_the_answer(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with live() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
        prompt, image_base64, endpoint_name = (
            "Describe this page.",
            png_b64(),
            "text-vision-llm-model-7B-image2text",
        )
        # The client code from the issue, unchanged:
        payload = {
            "inputs": [[{"role": "user", "content": str(prompt), "image": image_base64}]],
            "parameters": {"max_tokens": 1024, "top_p": 0.8, "temperature": 1.0, "repeat_penalty": 1.005},
        }
        sagemaker_client = boto3.client("sagemaker-runtime")
        response = sagemaker_client.invoke_endpoint(
            EndpointName=endpoint_name, ContentType="application/json", Body=json.dumps(payload)
        )
        answer = json.loads(response["Body"].read().decode())
    assert answer[0]["generation"]["content"] == REPLY
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_boto3_response_stream_yields_tokens_and_a_final_record(aws_env: None) -> None:
    with live() as url:
        client = boto3.client("sagemaker-runtime", endpoint_url=url)
        body = {
            "inputs": [[{"role": "user", "content": "hi", "image": png_b64()}]],
            "parameters": {"stream": True},
        }
        response = client.invoke_endpoint_with_response_stream(
            EndpointName="e", ContentType="application/json", Body=json.dumps(body)
        )
        data = b"".join(event["PayloadPart"]["Bytes"] for event in response["Body"])
    *tokens, final = [json.loads(line) for line in data.decode().splitlines()]
    assert len(tokens) == len(REPLY.split())
    assert "".join(t["token"]["text"] for t in tokens) == final["generated_text"] == REPLY
    assert final["finish_reason"] == "stop" and "usage" in final
    assert response["ContentType"] == "application/jsonlines"


def test_boto3_sees_container_errors_as_model_error(aws_env: None) -> None:
    with live() as url:
        client = boto3.client("sagemaker-runtime", endpoint_url=url, config=Config(retries={"max_attempts": 1}))
        bad = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"tempreature": 1}}
        with pytest.raises(client.exceptions.ModelError) as info:
            client.invoke_endpoint(EndpointName="e", ContentType="application/json", Body=json.dumps(bad))
        with pytest.raises(client.exceptions.ModelError):
            client.invoke_endpoint_with_response_stream(EndpointName="e", ContentType="text/csv", Body=b"a,b")
    assert info.value.response["OriginalStatusCode"] == 400
    assert "tempreature" in info.value.response["OriginalMessage"]


def test_a_failure_mid_stream_reaches_boto3_as_model_stream_error(aws_env: None) -> None:
    with live(FakeEngine(reply="partial text", error=ZeroDivisionError("boom"), error_after=1)) as url:
        client = boto3.client("sagemaker-runtime", endpoint_url=url)
        body = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"stream": True}}
        response = client.invoke_endpoint_with_response_stream(EndpointName="e", Body=json.dumps(body))
        events = iter(response["Body"])
        assert b"partial" in next(events)["PayloadPart"]["Bytes"]
        with pytest.raises(EventStreamError) as info:
            next(events)
    assert info.value.response["Error"]["Code"] == "ModelStreamError"


def test_the_openai_client_gets_plain_and_streamed_completions_for_a_data_image() -> None:
    openai = pytest.importorskip("openai")
    content = [
        {"type": "text", "text": "Describe this page."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png_b64()}},
    ]
    with live() as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        [model] = client.models.list().data
        plain = client.chat.completions.create(model=model.id, messages=[{"role": "user", "content": content}])
        stream = client.chat.completions.create(
            model=model.id, messages=[{"role": "user", "content": content}], stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert plain.choices[0].message.content == REPLY and plain.choices[0].finish_reason == "stop"
    assert plain.usage is not None and plain.usage.completion_tokens == len(REPLY.split())
    assert "".join(pieces) == REPLY


def _hold_the_slot(url: str, seconds_of_words: int) -> threading.Thread:
    """A request that keeps the only slot busy (FakeEngine at 0.05 s a word) for about ``seconds_of_words``."""
    body = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"max_tokens": 20 * seconds_of_words}}
    thread = threading.Thread(target=httpx.post, args=(f"{url}/invocations",), kwargs={"json": body, "timeout": 30})
    thread.start()
    while metric(url, "pagescribe_busy_slots") < 1:
        time.sleep(0.01)
    return thread


@pytest.mark.parametrize("ping_s", [0.2, 0.0])
def test_a_stream_queued_behind_a_long_page_outlives_a_short_client_read_timeout(ping_s: float) -> None:
    openai = pytest.importorskip("openai")
    engine = FakeEngine(reply=" ".join(["tok"] * 100), token_delay_s=0.05, n_slots=1)
    with live(engine, stream_ping_s=ping_s) as url:
        holder = _hold_the_slot(url, 2)
        # a client that gives up after 1 s without a byte, waiting ~2 s for its first token
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=httpx.Timeout(1.0))
        messages = [{"role": "user", "content": "Describe this page."}]
        try:
            stream = client.chat.completions.create(model="m", messages=messages, max_tokens=5, stream=True)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        except openai.APITimeoutError:
            text = None
        holder.join()
    if ping_s:
        assert text == "tok tok tok tok tok"
    else:  # the same client without keep-alive comments times out: what the pings are for
        assert text is None


def test_a_queued_event_stream_starts_with_200_and_comments_json_lines_wait() -> None:
    engine = FakeEngine(reply=" ".join(["tok"] * 100), token_delay_s=0.05, n_slots=1)
    chat = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "stream": True}
    dialog = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"max_tokens": 2, "stream": True}}
    with live(engine, stream_ping_s=0.2) as url:
        holder = _hold_the_slot(url, 1)
        started = time.monotonic()
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=chat, timeout=10) as response:
            headers_s = time.monotonic() - started
            events = [line for line in response.iter_lines() if line]
        holder.join()
        holder = _hold_the_slot(url, 1)
        lines = httpx.post(f"{url}/invocations", json=dialog, timeout=10).text.splitlines()
        holder.join()
    assert response.status_code == 200 and headers_s < 0.8  # not after the ~1 s wait for the slot
    comments = [line for line in events if line.startswith(":")]
    data = [json.loads(line[6:]) for line in events if line.startswith("data: {")]
    assert comments and set(comments) == {":"} and events[-1] == "data: [DONE]"
    assert "".join(d["choices"][0]["delta"].get("content") or "" for d in data) == "tok tok"
    # format A streams JSON Lines, which have no comment: it still waits for the first token, every line JSON
    assert [json.loads(line)["token"]["text"] for line in lines[:-1]] == ["tok", " tok"]
    assert json.loads(lines[-1])["generated_text"] == "tok tok"


def test_ping_answers_fast_while_every_slot_generates() -> None:
    engine = FakeEngine(reply=" ".join(["tok"] * 40), token_delay_s=0.05, n_slots=4)
    with live(engine) as url:
        body = {"inputs": [[{"role": "user", "content": "x"}]]}
        threads = [
            threading.Thread(target=httpx.post, args=(f"{url}/invocations",), kwargs={"json": body, "timeout": 30})
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        while metric(url, "pagescribe_busy_slots") < 4:
            time.sleep(0.02)
        worst = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert httpx.get(f"{url}/ping", timeout=2).status_code == 200
            worst = max(worst, time.monotonic() - started)
        assert metric(url, "pagescribe_busy_slots") == 4
        for thread in threads:
            thread.join()
    assert worst < 0.5


def test_a_client_that_disconnects_frees_its_slot() -> None:
    engine = FakeEngine(reply=" ".join(["tok"] * 200), token_delay_s=0.02)
    body = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"stream": True}}
    with live(engine) as url:
        with httpx.stream("POST", f"{url}/invocations", json=body, timeout=10) as response:
            lines = response.iter_lines()
            assert "token" in next(lines)
        # Streamed: the slot frees as soon as the server notices, long before the 4 s answer would end.
        deadline = time.monotonic() + 2
        while metric(url, 'pagescribe_generations_total{finish_reason="cancelled"}') < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # Not streamed: a client that gives up waiting cancels too.
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/invocations", json={"inputs": body["inputs"]}, timeout=0.3)
        deadline = time.monotonic() + 2
        while metric(url, 'pagescribe_generations_total{finish_reason="cancelled"}') < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert metric(url, "pagescribe_busy_slots") == 0


SERVER_SCRIPT = """
import sys
from pagescribe.engine.fake import FakeEngine
from pagescribe.server.run import run
from pagescribe.server.logging import configure_logging
from pagescribe.server.settings import ServerSettings

configure_logging(level="info")
engine = FakeEngine(reply=" ".join(["tok"] * 40), token_delay_s=0.05)
run(ServerSettings(host="127.0.0.1", port=int(sys.argv[1]), shutdown_timeout_s=10), engine)
"""


def test_sigterm_lets_the_running_generation_finish_then_exits_0() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, str(port)], stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(url)
        body = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"stream": True}}
        with httpx.stream("POST", f"{url}/invocations", json=body, timeout=15) as response:
            lines = response.iter_lines()
            first = json.loads(next(lines))
            process.send_signal(signal.SIGTERM)
            rest = [json.loads(line) for line in lines if line]
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
        logs = process.stderr.read() if process.stderr else ""
    *tokens, final = [first, *rest]
    assert final["finish_reason"] == "stop" and final["usage"]["completion_tokens"] == 40
    assert "".join(t["token"]["text"] for t in tokens) == final["generated_text"]
    assert all(json.loads(line) for line in logs.splitlines() if line.strip())  # every log line is JSON
