"""The retry policy: exponential back-off with jitter, Retry-After honoured, a bounded number of attempts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pagescribe.client import retry
from pagescribe.client.errors import retry_after_s
from pagescribe.client.retry import RetryPolicy, TryAgain
from pagescribe.errors import InvalidRequest, Overloaded


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(retry, "_sleep", waits.append)

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(retry, "_asleep", asleep)
    return waits


def failing(times: int, *, retry_after: float | None = None) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise TryAgain(Overloaded(f"busy #{len(calls)}"), retry_after_s=retry_after)
        return "done"

    return attempt, calls


def test_backoff_doubles_with_jitter_between_half_and_all_of_it() -> None:
    policy = RetryPolicy(attempts=6, base_s=1.0, max_backoff_s=5.0)
    for retry_number, ceiling in enumerate([1.0, 2.0, 4.0, 5.0, 5.0]):
        waits = {policy.delay(retry_number) for _ in range(200)}
        assert all(w is not None and ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 100  # jittered, not a fixed schedule


def test_retry_after_wins_over_the_backoff_and_too_long_a_wait_gives_up() -> None:
    policy = RetryPolicy(attempts=3, base_s=0.01, max_retry_after_s=30)
    wait = policy.delay(0, 7.0)
    assert wait is not None and 7.0 <= wait <= 8.0
    assert policy.delay(0, 31.0) is None
    assert policy.delay(2, None) is None  # the third attempt was the last


def test_a_call_that_fails_twice_then_succeeds_waits_twice(slept: list[float]) -> None:
    attempt, calls = failing(2, retry_after=3.0)
    assert retry.call(attempt, RetryPolicy(attempts=4), what="test") == "done"
    assert len(calls) == 3 and len(slept) == 2 and all(w >= 3.0 for w in slept)


def test_when_attempts_run_out_the_last_typed_error_is_raised(slept: list[float]) -> None:
    attempt, calls = failing(10)
    with pytest.raises(Overloaded, match="busy #3"):
        retry.call(attempt, RetryPolicy(attempts=3), what="test")
    assert len(calls) == 3 and len(slept) == 2


def test_errors_that_are_not_try_again_are_raised_at_once(slept: list[float]) -> None:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        raise InvalidRequest("bad")

    with pytest.raises(InvalidRequest):
        retry.call(attempt, RetryPolicy(attempts=5), what="test")
    assert calls == [1] and slept == []


def test_the_async_twin_retries_the_same_way(slept: list[float]) -> None:
    attempt, calls = failing(1)

    async def run() -> str:
        async def once() -> str:
            return attempt()

        return await retry.acall(once, RetryPolicy(attempts=2, base_s=0.2), what="test")

    assert asyncio.run(run()) == "done"
    assert len(calls) == 2 and len(slept) == 1 and 0.1 <= slept[0] <= 0.2


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str, expected: float | None) -> None:
    assert retry_after_s({"retry-after": header}) == expected


def test_a_policy_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)
