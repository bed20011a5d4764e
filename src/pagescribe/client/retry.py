"""When and how long to wait before trying a call again: exponential back-off with jitter, or ``Retry-After``.

Transports decide *whether* a failure may be retried (they know the protocol) by raising ``TryAgain``; this
module decides *when*, the same way for the sync and the async client. Only failures that happen before any
answer arrives are retried, so a generation is never silently run twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from pagescribe.errors import PagescribeError

log = logging.getLogger("pagescribe.client")
T = TypeVar("T")


class TryAgain(Exception):
    """Raised by one attempt: ``error`` is worth retrying, after ``retry_after_s`` if the server said so."""

    def __init__(self, error: PagescribeError, *, retry_after_s: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` in all (1 = no retry); waits grow ``base_s * 2**n`` up to ``max_backoff_s``, jittered.

    A ``Retry-After`` from the server wins over the back-off, up to ``max_retry_after_s``; beyond that the
    server is asking for more patience than a retry loop should have, and the error is raised at once.
    """

    attempts: int = 4
    base_s: float = 0.5
    max_backoff_s: float = 20.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay(self, retry: int, retry_after_s: float | None = None) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based); ``None`` to give up."""
        if retry + 1 >= self.attempts:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_retry_after_s:
                return None
            # A little jitter on top, so that clients told the same time do not all come back at once.
            return retry_after_s + random.uniform(0, min(1.0, 0.1 * retry_after_s))
        ceiling = min(self.max_backoff_s, self.base_s * 2**retry)
        # "Equal jitter": never less than half the back-off, so a busy server always gets some rest.
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))


NO_RETRY = RetryPolicy(attempts=1)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _asleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def call(attempt: Callable[[], T], policy: RetryPolicy, *, what: str) -> T:
    """Run ``attempt`` until it succeeds, raises a final error, or the policy gives up on ``TryAgain``."""
    retry = 0
    while True:
        try:
            return attempt()
        except TryAgain as again:
            _sleep(_wait_or_raise(again, policy, retry, what=what))
            retry += 1


async def acall(attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, *, what: str) -> T:
    """The async twin of ``call``."""
    retry = 0
    while True:
        try:
            return await attempt()
        except TryAgain as again:
            await _asleep(_wait_or_raise(again, policy, retry, what=what))
            retry += 1


def _wait_or_raise(again: TryAgain, policy: RetryPolicy, retry: int, *, what: str) -> float:
    wait = policy.delay(retry, again.retry_after_s)
    if wait is None:
        raise again.error from again
    log.warning(
        "%s: %s; retrying in %.1f s (attempt %d of %d)", what, again.error.message, wait, retry + 2, policy.attempts
    )
    return wait
