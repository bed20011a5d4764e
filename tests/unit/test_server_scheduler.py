"""The scheduler: parallel slots, the bounded queue, deadlines, cancellation and engine failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from pagescribe.engine.base import CancelToken
from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import ContextOverflow, EngineError, Overloaded, ServiceUnavailable
from pagescribe.server.scheduler import Scheduler
from pagescribe.types import GenerationRequest, GenerationResult, Message, Timings, Usage


def request(text: str = "hi", *, time_limit_s: float | None = None) -> GenerationRequest:
    return GenerationRequest(messages=(Message.user(text),), time_limit_s=time_limit_s)


@dataclass
class GateEngine:
    """Each generation waits at a gate until the test opens it (or it is cancelled)."""

    n_slots: int = 1
    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    time_limits: list[float | None] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    model_id: str = "gate"

    @property
    def slots(self) -> int:
        return self.n_slots

    def load(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stream(self, req: GenerationRequest, *, cancel: CancelToken | None = None) -> Iterator[str | GenerationResult]:
        self.started.append(req.messages[0].text)
        self.time_limits.append(req.time_limit_s)
        yield "piece"
        while not self.gate.wait(0.01):
            if cancel is not None and cancel.cancelled:
                self.cancelled.append(req.messages[0].text)
                break
        yield GenerationResult("piece", "stop", Usage(1, 1), Timings(), self.model_id)


async def wait_until(condition: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def gate_engine() -> Iterator[GateEngine]:
    engine = GateEngine()
    yield engine
    engine.gate.set()


async def test_each_slot_runs_a_generation_at_the_same_time(gate_engine: GateEngine) -> None:
    gate_engine.n_slots = 2
    scheduler = Scheduler(gate_engine, workers=2, queue_size=4)
    scheduler.start()
    jobs = scheduler.submit([request("a"), request("b")], deadline=None)
    await wait_until(lambda: len(gate_engine.started) == 2)  # both began before either could finish
    assert scheduler.busy == 2
    gate_engine.gate.set()
    results = [await job.result() for job in jobs]
    assert [r.text for r in results] == ["piece", "piece"]
    scheduler.stop(timeout_s=2)


async def test_a_full_queue_refuses_at_once_with_retry_after(gate_engine: GateEngine) -> None:
    scheduler = Scheduler(gate_engine, workers=1, queue_size=1, retry_after_s=3)
    scheduler.start()
    running = scheduler.submit([request("running")], deadline=None)
    await wait_until(lambda: scheduler.busy == 1)
    waiting = scheduler.submit([request("waiting")], deadline=None)
    with pytest.raises(Overloaded) as info:
        scheduler.submit([request("refused")], deadline=None)
    assert info.value.retry_after_s == 3
    gate_engine.gate.set()
    for job in running + waiting:
        await job.result()
    assert "refused" not in gate_engine.started
    scheduler.stop(timeout_s=2)


async def test_an_empty_queue_admits_a_request_bigger_than_the_queue(gate_engine: GateEngine) -> None:
    gate_engine.gate.set()
    scheduler = Scheduler(gate_engine, workers=1, queue_size=1)
    scheduler.start()
    jobs = scheduler.submit([request(str(n)) for n in range(3)], deadline=None)
    assert [(await j.result()).text for j in jobs] == ["piece"] * 3
    scheduler.stop(timeout_s=2)


async def test_a_consumer_that_leaves_cancels_its_generation_and_frees_the_slot(
    gate_engine: GateEngine,
) -> None:
    scheduler = Scheduler(gate_engine, workers=1, queue_size=4)
    scheduler.start()
    first, second = scheduler.submit([request("left"), request("next")], deadline=None)
    events = first.events()
    assert await anext(events) == "piece"
    await events.aclose()  # what a disconnecting client's stream does
    await wait_until(lambda: gate_engine.cancelled == ["left"])
    await wait_until(lambda: "next" in gate_engine.started)
    gate_engine.gate.set()
    assert (await second.result()).text == "piece"
    scheduler.stop(timeout_s=2)


async def test_the_engine_gets_what_is_left_of_the_budget(gate_engine: GateEngine) -> None:
    gate_engine.gate.set()
    scheduler = Scheduler(gate_engine, workers=1, queue_size=4)
    scheduler.start()
    [job] = scheduler.submit([request()], deadline=time.monotonic() + 30)
    await job.result()
    [limit] = gate_engine.time_limits
    assert limit is not None and 25 < limit <= 30
    scheduler.stop(timeout_s=2)


async def test_a_budget_spent_in_the_queue_answers_time_limit_without_running(
    gate_engine: GateEngine,
) -> None:
    scheduler = Scheduler(gate_engine, workers=1, queue_size=4)
    scheduler.start()
    blocker = scheduler.submit([request("blocker")], deadline=None)
    [late] = scheduler.submit([request("late")], deadline=time.monotonic() + 0.05)
    await asyncio.sleep(0.1)
    gate_engine.gate.set()
    await blocker[0].result()
    result = await late.result()
    assert (result.text, result.finish_reason) == ("", "time_limit")
    assert "late" not in gate_engine.started
    scheduler.stop(timeout_s=2)


async def test_a_time_limit_mid_generation_returns_the_partial_text() -> None:
    engine = FakeEngine(reply="one two three four five six seven eight", token_delay_s=0.05)
    scheduler = Scheduler(engine, workers=1, queue_size=4)
    scheduler.start()
    [job] = scheduler.submit([request()], deadline=time.monotonic() + 0.12)
    result = await job.result()
    assert result.finish_reason == "time_limit"
    assert result.text and "one two three four five six seven eight".startswith(result.text)
    scheduler.stop(timeout_s=2)


async def test_engine_errors_reach_the_consumer() -> None:
    class Failing(FakeEngine):
        def stream(self, req: GenerationRequest, *, cancel: CancelToken | None = None) -> Iterator[str]:
            if "overflow" in req.messages[0].text:
                raise ContextOverflow("too long")
            raise ZeroDivisionError("a defect")
            yield ""

    scheduler = Scheduler(Failing(), workers=1, queue_size=4)
    scheduler.start()
    overflow, defect = scheduler.submit([request("overflow"), request("defect")], deadline=None)
    with pytest.raises(ContextOverflow):
        await overflow.result()
    with pytest.raises(EngineError):
        await defect.result()
    scheduler.stop(timeout_s=2)


async def test_stop_cancels_running_work_and_refuses_new_work(gate_engine: GateEngine) -> None:
    scheduler = Scheduler(gate_engine, workers=1, queue_size=4)
    scheduler.start()
    [job] = scheduler.submit([request("running")], deadline=None)
    await wait_until(lambda: scheduler.busy == 1)
    assert await asyncio.to_thread(scheduler.stop, timeout_s=2)
    assert gate_engine.cancelled == ["running"]
    assert (await job.result()).text == "piece"
    with pytest.raises(ServiceUnavailable):
        scheduler.submit([request()], deadline=None)


async def test_queue_changes_are_reported(gate_engine: GateEngine) -> None:
    seen: list[tuple[int, int]] = []
    scheduler = Scheduler(gate_engine, workers=1, queue_size=4, on_change=lambda w, b: seen.append((w, b)))
    scheduler.start()
    jobs = scheduler.submit([request("a"), request("b")], deadline=None)
    await wait_until(lambda: (1, 1) in seen)
    gate_engine.gate.set()
    for job in jobs:
        await job.result()
    await wait_until(lambda: seen[-1] == (0, 0))
    scheduler.stop(timeout_s=2)
