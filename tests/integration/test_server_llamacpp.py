"""The acceptance list against a real server on loopback running the real llama.cpp engine (tiny model)."""

from __future__ import annotations

import base64
import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import httpx
import pytest
from PIL import Image, ImageDraw

from pagescribe.engine.base import Work
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.models.files import ModelFiles
from pagescribe.types import GenerationRequest
from servers import LiveServer, free_port, sagemaker_env

pytestmark = pytest.mark.integration


def page_b64(color: str = "white", label: str = "Invoice 42") -> str:
    image = Image.new("RGB", (320, 240), color)
    ImageDraw.Draw(image).text((20, 20), label, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class Recording(LlamaCppEngine):
    """The real engine, keeping every request it was given (to render the exact prompt afterwards)."""

    def __init__(self, files: ModelFiles, **options: Any) -> None:
        super().__init__(EngineOptions(**options), files=files)
        self.received: list[GenerationRequest] = []
        self.may_load = threading.Event()
        self.may_load.set()

    def load(self) -> None:
        self.may_load.wait(30)
        super().load()

    def submit(self, works: Sequence[Work], *, wait: bool = False) -> None:
        self.received.extend(work.request for work in works)
        super().submit(works, wait=wait)


Live = LiveServer[Recording]


@pytest.fixture(scope="module")
def live(tiny_model: ModelFiles) -> Iterator[Live]:
    # A large context, so that only max_tokens, a stop or the time limit ends generation.
    engine = Recording(tiny_model, ctx=65536, threads=2)
    # A server-side budget, as under SageMaker: a starved CPU cannot make a test wait for 1024 tokens.
    with LiveServer(engine, queue_size=8, time_limit_s=10) as server:
        yield server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, live: Live) -> None:
    for name, value in sagemaker_env(live.url).items():
        monkeypatch.setenv(name, value)


def test_unmodified_boto3_gets_the_generated_text(aws: None) -> None:
    prompt, image_base64, endpoint_name = (
        "Describe this page.",
        page_b64(),
        "text-vision-llm-model-7B-image2text",
    )
    payload = {
        "inputs": [[{"role": "user", "content": str(prompt), "image": image_base64}]],
        "parameters": {"max_tokens": 1024, "top_p": 0.8, "temperature": 1.0, "repeat_penalty": 1.005},
    }
    sagemaker_client = boto3.client("sagemaker-runtime")
    response = sagemaker_client.invoke_endpoint(
        EndpointName=endpoint_name, ContentType="application/json", Body=json.dumps(payload)
    )
    answer = json.loads(response["Body"].read().decode())
    assert answer[0]["generation"]["content"] == answer[0]["generated_text"]
    assert answer[0]["generated_text"] and answer[0]["usage"]["completion_tokens"] > 0
    assert answer[0]["finish_reason"] in ("stop", "length", "time_limit")
    assert answer[0]["model"] == "pagescribe-tiny" and answer[0]["timings"]["image_encode_ms"] > 0


def test_boto3_response_stream_tokens_join_to_the_final_text(aws: None) -> None:
    client = boto3.client("sagemaker-runtime")
    body = {
        "inputs": [[{"role": "user", "content": "Describe.", "image": page_b64()}]],
        "parameters": {"max_tokens": 40, "stream": True},
    }
    response = client.invoke_endpoint_with_response_stream(
        EndpointName="e", ContentType="application/json", Body=json.dumps(body)
    )
    data = b"".join(event["PayloadPart"]["Bytes"] for event in response["Body"])
    *tokens, final = [json.loads(line) for line in data.decode().splitlines()]
    assert len(tokens) >= 2
    assert "".join(t["token"]["text"] for t in tokens) == final["generated_text"]
    assert final["usage"]["completion_tokens"] == 40 or final["finish_reason"] == "stop"


def test_the_openai_client_plain_and_streamed_with_a_data_image(live: Live) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
    content = [
        {"type": "text", "text": "Describe this page."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + page_b64()}},
    ]
    messages = [{"role": "user", "content": content}]
    plain = client.chat.completions.create(model="pagescribe-tiny", messages=messages, max_tokens=24)
    stream = client.chat.completions.create(model="pagescribe-tiny", messages=messages, max_tokens=24, stream=True)
    pieces = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert plain.choices[0].message.content and plain.usage is not None and plain.usage.prompt_tokens > 16
    assert pieces == plain.choices[0].message.content  # greedy: the same text both ways


def test_a_stream_waiting_for_the_only_slot_gets_comments_then_the_same_text(tiny_model: ModelFiles) -> None:
    engine = Recording(tiny_model, ctx=4096, threads=2, slots=1)
    page = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + page_b64("white", "Memo 3")}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe."}, page]}], "max_tokens": 12}
    long = {"inputs": [[{"role": "user", "content": "Describe.", "image": page_b64("navy", "Chart")}]],
            "parameters": {"max_tokens": 2000}}
    with LiveServer(engine, stream_ping_s=0.05, time_limit_s=30) as server:
        plain = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60).json()
        holder = threading.Thread(target=httpx.post, args=(f"{server.url}/invocations",),
                                  kwargs={"json": long, "timeout": 60})
        holder.start()
        while len(engine.received) < 2:
            time.sleep(0.01)
        with httpx.stream("POST", f"{server.url}/v1/chat/completions", json={**body, "stream": True},
                          timeout=60) as response:
            events = [line for line in response.iter_lines() if line]
        holder.join()
    data = [json.loads(line[6:]) for line in events if line.startswith("data: {")]
    first_text = next(i for i, line in enumerate(events) if '"content":"' in line and '"content":""' not in line)
    assert ":" in events[:first_text]  # kept alive while the long answer held the slot
    assert events[-1] == "data: [DONE]"
    streamed = "".join(d["choices"][0]["delta"].get("content") or "" for d in data)
    assert streamed and streamed == plain["choices"][0]["message"]["content"]  # greedy: the same text


def test_metrics_count_the_prompt_tokens_the_prefix_cache_saved(live: Live) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def cached() -> float:
        families = text_string_to_metric_families(httpx.get(f"{live.url}/metrics", timeout=10).text)
        return next(f.samples[0].value for f in families if f.name == "pagescribe_cached_prompt_tokens")

    content = [
        {"type": "text", "text": "Transcribe this page into Markdown, tables as tables."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + page_b64("ivory", "Ledger 7")}},
    ]
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 3}
    before = cached()
    answers = [httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=60).json() for _ in range(2)]
    # the second asks the same again: all its prompt but the last token comes from the cache
    assert cached() - before >= answers[1]["usage"]["prompt_tokens"] - 1


def test_two_dialogs_two_answers_in_order_and_the_marker_places_the_image(live: Live) -> None:
    body = {
        "inputs": [
            [{"role": "user", "content": "Look at <ImageHere> and describe it.", "image": page_b64("white")}],
            [{"role": "user", "content": "Describe.", "image": page_b64("navy", "Chart")}],
        ],
        "parameters": {"max_tokens": 16},
    }
    before = len(live.engine.received)
    first, second = httpx.post(f"{live.url}/invocations", json=body, timeout=60).json()
    single = httpx.post(f"{live.url}/invocations", json={**body, "inputs": body["inputs"][1:]}, timeout=60).json()
    assert second["generated_text"] == single[0]["generated_text"]  # answered independently, in order
    assert first["generated_text"] != second["generated_text"]
    placed = live.engine.received[before]
    assert "Look at <__image__> and describe it." in live.engine.render_prompt(placed)


def test_a_one_second_budget_returns_partial_text_with_time_limit(live: Live) -> None:
    body = {
        "inputs": [[{"role": "user", "content": "Describe.", "image": page_b64()}]],
        "parameters": {"max_tokens": 100000, "time_limit_s": 1},
    }
    started = time.monotonic()
    [answer] = httpx.post(f"{live.url}/invocations", json=body, timeout=60).json()
    assert answer["finish_reason"] == "time_limit"
    assert time.monotonic() - started < 5
    # The text so far comes back. (On a starved CPU the prompt alone can eat the whole second; then the
    # timings say so and there is rightly no text yet.)
    spent_before_text = answer["timings"]["image_encode_ms"] + answer["timings"]["prompt_ms"]
    if spent_before_text < 800:
        assert answer["generated_text"] and answer["usage"]["completion_tokens"] > 0


def test_ping_answers_within_2s_while_4_long_generations_run(live: Live) -> None:
    body = {
        "inputs": [[{"role": "user", "content": "Describe.", "image": page_b64()}]],
        "parameters": {"max_tokens": 100000, "time_limit_s": 4},
    }
    threads = [
        threading.Thread(target=httpx.post, args=(f"{live.url}/invocations",), kwargs={"json": body, "timeout": 60})
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    worst = 0.0
    while any(t.is_alive() for t in threads):
        started = time.monotonic()
        assert httpx.get(f"{live.url}/ping", timeout=2).status_code == 200
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.2)
    assert worst < 2


def test_json_lines_batch_of_three_with_one_bad_record(live: Live) -> None:
    good = {
        "inputs": [[{"role": "user", "content": "Describe.", "image": page_b64()}]],
        "parameters": {"max_tokens": 8},
    }
    bad = {"inputs": [[{"role": "user", "content": "Describe.", "image": "bm90IGFuIGltYWdl"}]]}
    text = "\n".join(json.dumps(r) for r in (good, bad, good)) + "\n"
    response = httpx.post(
        f"{live.url}/invocations", content=text, headers={"Content-Type": "application/jsonlines"}, timeout=60
    )
    first, second, third = [json.loads(line) for line in response.text.splitlines()]
    assert first[0]["generated_text"] == third[0]["generated_text"]
    assert second["error"]["type"] == "invalid_image"


def test_errors_from_the_engine_and_service_after_them(live: Live) -> None:
    overflow = {"inputs": [[{"role": "user", "content": "word " * 70000}]], "parameters": {"max_tokens": 4}}
    schema = {
        "type": "json_schema",
        "json_schema": {"schema": {"type": "object", "properties": {"a": {"type": 5}}}},
    }
    bad_schema = {"inputs": [[{"role": "user", "content": "x"}]], "parameters": {"response_format": schema}}
    for body in (overflow, bad_schema):
        response = httpx.post(f"{live.url}/invocations", json=body, timeout=60)
        assert response.status_code == 400, response.text
    good = {
        "inputs": [[{"role": "user", "content": "Describe.", "image": page_b64()}]],
        "parameters": {"max_tokens": 4},
    }
    assert httpx.post(f"{live.url}/invocations", json=good, timeout=60).json()[0]["generated_text"]


def test_ping_is_503_until_the_real_model_has_loaded(tiny_model: ModelFiles) -> None:
    engine = Recording(tiny_model, n_ctx=1024, n_threads=2)
    engine.may_load.clear()
    with LiveServer(engine, wait_for_model=False) as server:
        loading = httpx.get(f"{server.url}/ping")
        engine.may_load.set()
        server.wait_ready()
    assert loading.status_code == 503 and loading.json()["status"] == "loading"


SERVER = """
import sys
from pagescribe.models.files import ModelFiles
from pagescribe.engine.factory import build_engine
from pagescribe.engine.options import EngineOptions
from pagescribe.server.run import run
from pagescribe.server.logging import configure_logging
from pagescribe.server.settings import ServerSettings

configure_logging()
files = ModelFiles(text=sys.argv[2], mmproj=sys.argv[3], model_id="tiny")
engine = build_engine(EngineOptions(ctx=65536, threads=2), files=files)
run(ServerSettings(host="127.0.0.1", port=int(sys.argv[1])), engine)
"""


def test_sigterm_during_a_generation_completes_it_and_exits_0(tiny_model: ModelFiles) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-c", SERVER, str(port), str(tiny_model.text), str(tiny_model.mmproj)]
    process = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < end
            time.sleep(0.1)
        body = {
            "inputs": [[{"role": "user", "content": "Describe.", "image": page_b64()}]],
            # sampled at temperature 1 from random weights, the end-of-text token is about 1 in 32000 per step:
            # the generation outlives the signal and ends on its own time limit
            "parameters": {"max_tokens": 100000, "time_limit_s": 2, "stream": True, "temperature": 1.0, "seed": 7},
        }
        with httpx.stream("POST", f"{url}/invocations", json=body, timeout=30) as response:
            lines = response.iter_lines()
            first = json.loads(next(lines))
            process.send_signal(signal.SIGTERM)
            rest = [json.loads(line) for line in lines if line]
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    *tokens, final = [first, *rest]
    assert final["finish_reason"] == "time_limit"  # it ran to its own end, not cut by the shutdown
    assert "".join(t["token"]["text"] for t in tokens) == final["generated_text"]
