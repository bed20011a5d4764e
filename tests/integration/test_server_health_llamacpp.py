"""The engine is the one queue and the judge of its own health, through the real llama.cpp engine and a live server.

A native step is made to block (as a wedged llama.cpp call would) by holding the engine's decode call at a gate.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from PIL import Image

from pagescribe.engine.factory import build_engine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.images import encode_image
from pagescribe.models.files import ModelFiles
from servers import LiveServer

PING_BUDGET_S = 2.0  # SageMaker's: /ping must answer within 2 s


class Gate:
    """Holds every native decode of an engine until opened: the engine's loop is wedged meanwhile."""

    def __init__(self, engine: LlamaCppEngine) -> None:
        scheduler = engine._scheduler
        assert scheduler is not None
        self.native = scheduler.native
        self.original: Callable[[Any], int] = self.native.decode
        self.open = threading.Event()
        self.held = threading.Event()
        self.native.decode = self._decode  # type: ignore[method-assign]

    def _decode(self, batch: Any) -> int:
        self.held.set()
        self.open.wait(60)
        return self.original(batch)

    def release(self) -> None:
        self.open.set()
        self.native.decode = self.original  # type: ignore[method-assign]


def dialog(n: int) -> dict[str, Any]:
    page = Image.new("RGB", (96, 64), (40 * n % 256, 120, 200))
    image = base64.b64encode(encode_image(page)).decode()
    return {"inputs": [[{"role": "user", "content": f"Page {n}.", "image": image}]], "parameters": {"max_tokens": 6}}


def timed_ping(url: str) -> tuple[int, float, dict[str, Any]]:
    started = time.monotonic()
    response = httpx.get(f"{url}/ping", timeout=PING_BUDGET_S + 1)
    return response.status_code, time.monotonic() - started, response.json()


@pytest.fixture
def served(tiny_model: ModelFiles, request: pytest.FixtureRequest) -> Iterator[LiveServer[LlamaCppEngine]]:
    options = EngineOptions(ctx=1024, threads=2, slots=2, queue_size=4, **getattr(request, "param", {}))
    with LiveServer(build_engine(options, files=tiny_model)) as server:
        yield server


@pytest.mark.parametrize("served", [{"stall_timeout_s": 1.0}], indirect=True)
def test_a_wedged_engine_turns_ping_503_within_the_budget_and_recovers(served: LiveServer[LlamaCppEngine]) -> None:
    assert timed_ping(served.url)[0] == 200
    gate = Gate(served.engine)
    worker = threading.Thread(target=lambda: httpx.post(f"{served.url}/invocations", json=dialog(1), timeout=60))
    worker.start()
    try:
        assert gate.held.wait(10), "the request never reached a native step"
        seen: list[tuple[int, float, dict[str, Any]]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (seen and seen[-1][0] == 503):
            seen.append(timed_ping(served.url))
            time.sleep(0.1)
        status, _, body = seen[-1]
        assert status == 503 and "no progress" in body["reason"], seen
        assert max(t for _, t, _ in seen) < PING_BUDGET_S  # every answer in time, wedged or not
    finally:
        gate.release()
        worker.join(30)
    end = time.monotonic() + 10
    while timed_ping(served.url)[0] != 200:
        assert time.monotonic() < end, "the engine did not recover after the step finished"
        time.sleep(0.05)


def test_exactly_the_overflow_is_refused_and_every_admitted_request_answers(
    served: LiveServer[LlamaCppEngine],
) -> None:
    slots, queue_size = 2, 4
    sent = 3 * slots + queue_size
    gate = Gate(served.engine)  # nothing finishes until every request has arrived
    with ThreadPoolExecutor(sent) as pool:
        futures = [
            pool.submit(httpx.post, f"{served.url}/invocations", json=dialog(n), timeout=120) for n in range(sent)
        ]
        end = time.monotonic() + 30
        while sum(f.done() for f in futures) < sent - (slots + queue_size):
            assert time.monotonic() < end, "the overflow was not refused at once"
            time.sleep(0.02)
        pings = [timed_ping(served.url) for _ in range(5)]  # a full engine still answers /ping at once
        gate.release()
        responses = [f.result() for f in futures]
    refused = [r for r in responses if r.status_code == 503]
    answered = [r for r in responses if r.status_code == 200]
    assert len(refused) == sent - (slots + queue_size) and len(answered) == slots + queue_size
    assert all(r.headers["Retry-After"] and r.json()["error"]["type"] == "overloaded" for r in refused)
    assert all(r.json()[0]["finish_reason"] == "length" for r in answered)
    assert all(status == 200 and took < PING_BUDGET_S for status, took, _ in pings)
