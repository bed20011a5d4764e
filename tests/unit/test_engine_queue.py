"""The engine's one queue (shared by every engine): slots run together, a bounded waiting list refuses the overflow,
deadlines count from arrival, readers that leave cancel, failures reach their reader, health sees a wedged loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pagescribe.engine.base import CancelToken, Work
from pagescribe.engine.fake import FakeEngine
from pagescribe.engine.sinks import AsyncEvents, Events, collect, stream
from pagescribe.errors import EngineError, NotReady, Overloaded
from pagescribe.types import GenerationRequest, GenerationResult, Message

SLOW = "one two three four five six seven eight nine ten"


def request(text: str = "hi", *, time_limit_s: float | None = None, arrived: float | None = None) -> GenerationRequest:
    req = GenerationRequest(messages=(Message.user(text),), time_limit_s=time_limit_s)
    if arrived is not None:
        req = GenerationRequest(req.messages, req.params, req.time_limit_s, req.request_id, arrived)
    return req


def wait_until(condition: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.005)


def submit(engine: FakeEngine, *texts: str, wait: bool = False) -> list[Events]:
    events = [Events() for _ in texts]
    engine.submit([Work(request(t), e, e.cancel) for t, e in zip(texts, events, strict=True)], wait=wait)
    return events


def result(events: Events) -> GenerationResult:
    *_, last = list(events)
    assert isinstance(last, GenerationResult)
    return last


def test_each_slot_runs_a_request_at_the_same_time() -> None:
    engine = FakeEngine(n_slots=2, reply=SLOW, token_delay_s=0.02)
    a, b = submit(engine, "a", "b")
    wait_until(lambda: engine.health().busy == 2)  # both began before either could finish
    assert [result(e).text for e in (a, b)] == [SLOW, SLOW]


def test_a_full_queue_refuses_the_whole_overflow_at_once_with_retry_after() -> None:
    engine = FakeEngine(n_slots=1, queue_size=1, retry_after_s=3, reply=SLOW, token_delay_s=0.02)
    admitted = submit(engine, "running", "waiting")
    with pytest.raises(Overloaded) as refused:
        submit(engine, "refused")
    assert refused.value.retry_after_s == 3
    with pytest.raises(Overloaded):  # all or none: two more do not fit either
        submit(engine, "x", "y")
    assert [result(e).finish_reason for e in admitted] == ["stop", "stop"]
    assert [r.messages[0].text for r in engine.requests] == ["running", "waiting"]


def test_an_empty_engine_admits_a_batch_bigger_than_its_queue() -> None:
    engine = FakeEngine(n_slots=1, queue_size=1)
    assert [result(e).text for e in submit(engine, "1", "2", "3")] == [engine.reply] * 3


def test_a_blocking_caller_waits_for_room_instead_of_being_refused() -> None:
    engine = FakeEngine(n_slots=1, queue_size=0, reply=SLOW, token_delay_s=0.01)
    first = submit(engine, "first")
    started = time.monotonic()
    [second] = submit(engine, "second", wait=True)  # returns once the first is answered
    assert result(first[0]).finish_reason == "stop" and time.monotonic() - started > 0.05
    assert result(second).text == SLOW


def test_a_reader_that_stops_early_cancels_its_request_and_frees_the_slot() -> None:
    engine = FakeEngine(n_slots=1, reply=SLOW, token_delay_s=0.02)
    events = stream(engine, request("left"))
    assert next(events) == "one"
    events.close()  # what a disconnecting client's stream does
    assert collect(engine, request("next")).text == SLOW
    assert [r.messages[0].text for r in engine.requests] == ["left", "next"]


def test_a_cancelled_request_ends_with_what_it_had() -> None:
    engine = FakeEngine(reply=SLOW, token_delay_s=0.02)
    cancel = CancelToken()
    threading.Timer(0.07, cancel.cancel).start()
    done = collect(engine, request(), cancel=cancel)
    assert done.finish_reason == "cancelled" and SLOW.startswith(done.text)


def test_the_budget_counts_from_arrival_and_a_late_request_still_makes_progress() -> None:
    engine = FakeEngine(n_slots=1, reply=SLOW, token_delay_s=0.02)
    blocker = submit(engine, "blocker")
    late = Events()
    engine.submit([Work(request("late", time_limit_s=0.05), late, late.cancel)])
    assert result(blocker[0]).finish_reason == "stop"
    answered = result(late)  # its budget went on waiting: one step, and what that made
    assert (answered.text, answered.finish_reason) == ("one", "time_limit")
    # A request that arrived 10 s ago with a 10 s budget has none left, however soon it is submitted.
    old = collect(engine, request("old", time_limit_s=10, arrived=time.monotonic() - 10))
    assert (old.text, old.finish_reason) == ("one", "time_limit")


def test_a_time_limit_mid_generation_returns_the_partial_text() -> None:
    engine = FakeEngine(reply=SLOW, token_delay_s=0.05)
    done = collect(engine, request(time_limit_s=0.12))
    assert done.finish_reason == "time_limit" and done.text and SLOW.startswith(done.text)


def test_a_failure_reaches_its_reader_and_no_other() -> None:
    engine = FakeEngine(n_slots=2, fail_on="boom")
    bad, good = submit(engine, "boom", "fine")
    with pytest.raises(EngineError, match="scripted failure"):
        result(bad)
    assert result(good).text == engine.reply


def test_close_answers_what_waits_and_refuses_new_work() -> None:
    engine = FakeEngine(n_slots=1, reply=SLOW, token_delay_s=0.05)
    engine.load()
    running, waiting = submit(engine, "running", "waiting")
    wait_until(lambda: engine.health().busy == 1)
    engine.close()
    assert result(running).finish_reason == "cancelled"
    with pytest.raises(NotReady):
        result(waiting)
    with pytest.raises(NotReady):
        submit(engine, "late")
    assert not engine.health().ok


def test_health_turns_bad_when_the_loop_makes_no_progress_with_work_in_hand() -> None:
    engine = FakeEngine(reply=SLOW, token_delay_s=0.3, stall_timeout_s=0.1)
    engine.load()
    assert engine.health().ok  # idle: nothing to make progress with
    [events] = submit(engine, "slow")
    wait_until(lambda: not engine.health().ok)
    assert "no progress" in engine.health().reason
    events.cancel.cancel()
    wait_until(lambda: engine.health().ok)


async def test_async_events_arrive_on_the_loop_and_leaving_early_cancels() -> None:
    engine = FakeEngine(n_slots=1, reply=SLOW, token_delay_s=0.02)
    loop = asyncio.get_running_loop()
    seen: list[GenerationResult] = []
    first, second = AsyncEvents(loop, on_result=seen.append), AsyncEvents(loop, on_result=seen.append)
    engine.submit([first.work(request("left")), second.work(request("next"))])
    pieces = first.events()
    assert await anext(pieces) == "one"
    await pieces.aclose()  # the client went away
    assert (await second.result()).text == SLOW
    await asyncio.sleep(0.05)
    assert [r.finish_reason for r in seen] == ["cancelled", "stop"]
