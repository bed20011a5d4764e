"""The engine's one queue: admission (bounded, all or none), the waiting list, and the loop's heartbeat.

Both engines (llama.cpp's batch loop and the fake) are one thread that takes jobs from a ``WorkQueue`` and answers
each exactly once through ``Job.finish``. Capacity is ``slots`` running plus ``queue_size`` waiting; a submission
that would not fit is refused whole (``Overloaded``), except that an empty engine takes anything, so a dialog
batch larger than the queue is never starved. ``Heartbeat`` tells a busy loop from a wedged one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pagescribe.engine.base import Health, Work
from pagescribe.errors import NotReady, Overloaded
from pagescribe.types import FinishReason, GenerationRequest, GenerationResult, Timings, Usage


@dataclass(eq=False)
class Job:
    """A submitted request inside the engine: its work, its deadline, and the queue to tell when it is answered."""

    work: Work
    queue: WorkQueue
    deadline: float | None
    submitted: float = field(default_factory=time.perf_counter)
    prompt: Any = None  # the engine's tokenized prompt, kept while the job waits to be admitted
    answered: bool = False

    @property
    def request(self) -> GenerationRequest:
        return self.work.request

    def emit(self, piece: str) -> None:
        """Hand one text piece to the reader."""
        try:
            self.work.sink(piece)
        except Exception:  # a sink that cannot deliver has lost its reader: stop generating for it
            self.work.cancel.cancel()

    def finish(self, event: GenerationResult | BaseException) -> None:
        """Hand the final event to the reader, once; the job then leaves the engine."""
        if self.answered:
            return
        self.answered = True
        try:
            self.work.sink(event)
        except Exception:
            self.work.cancel.cancel()
        finally:
            self.queue.answered()

    def stop_reason(self, now: float | None = None) -> FinishReason | None:
        """Why the job must stop now (cancelled, or out of time), or ``None``."""
        if self.work.cancel.cancelled:
            return "cancelled"
        if self.deadline is not None and (now or time.monotonic()) >= self.deadline:
            return "time_limit"
        return None

    def empty_result(self, finish: FinishReason, model: str) -> GenerationResult:
        """The answer of a job stopped before it produced anything."""
        return GenerationResult(text="", finish_reason=finish, usage=Usage(), timings=Timings(), model=model)


class WorkQueue:
    """Jobs submitted but not yet answered: the waiting list in order, and a count of those running."""

    def __init__(self, *, slots: int, queue_size: int, retry_after_s: float) -> None:
        self.capacity = slots + queue_size
        self.retry_after_s = retry_after_s
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._in_engine = 0  # submitted and not answered: waiting, held by the loop, or running
        self._closed = False

    # -- callers (any thread) ------------------------------------------------------------------------------

    def submit(self, works: Sequence[Work], *, wait: bool = False) -> list[Job]:
        """Admit all of ``works`` or none; see the module docstring."""
        with self._cond:
            while True:
                if self._closed:
                    raise NotReady("the engine is shutting down")
                if not self._in_engine or self._in_engine + len(works) <= self.capacity:
                    break
                if not wait:
                    raise Overloaded(
                        f"the queue is full ({self._in_engine} request(s) in the engine, room for {self.capacity})",
                        retry_after_s=self.retry_after_s,
                    )
                self._cond.wait()
            jobs = [Job(work, self, work.request.deadline) for work in works]
            self._waiting.extend(jobs)
            self._in_engine += len(jobs)
            self._cond.notify_all()
        return jobs

    @property
    def in_engine(self) -> int:
        return self._in_engine

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # -- the loop (one thread) -----------------------------------------------------------------------------

    def wait_for_work(self, *, busy: bool) -> bool:
        """Block until there is something to do (return at once when ``busy``); ``False`` once closed."""
        with self._cond:
            while not self._closed and not busy and not self._waiting:
                self._cond.wait()
            return not self._closed

    def take(self) -> list[Job]:
        """Every waiting job, in order (the loop puts back those it cannot start yet with ``hold``)."""
        with self._cond:
            jobs = list(self._waiting)
            self._waiting.clear()
            return jobs

    def hold(self, jobs: Sequence[Job]) -> None:
        """Put jobs back at the front of the waiting list, in their order."""
        if jobs:
            with self._cond:
                self._waiting.extendleft(reversed(jobs))

    def answered(self) -> None:
        with self._cond:
            self._in_engine -= 1
            self._cond.notify_all()

    def close(self) -> None:
        """Refuse new work from now on and wake the loop, which fails what is still waiting as it ends."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Heartbeat:
    """When the loop last made progress, and the last failure it survived."""

    def __init__(self, *, stall_timeout_s: float) -> None:
        self.stall_timeout_s = stall_timeout_s
        self._last = time.monotonic()
        self.last_error: str | None = None

    def beat(self) -> None:
        self._last = time.monotonic()

    def failed(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"

    def health(self, *, thread: threading.Thread | None, queue: WorkQueue, busy: int) -> Health:
        """The engine's health from its loop's thread, its queue and this heartbeat."""
        # Submitted and not answered, less those running: steady while the loop moves jobs between list and slots.
        waiting, error = max(0, queue.in_engine - busy), self.last_error
        if thread is None:
            return Health(False, "the model is not loaded", waiting, busy, error)
        if not thread.is_alive():
            return Health(False, "the engine's batch thread has stopped", waiting, busy, error)
        quiet = time.monotonic() - self._last
        if queue.in_engine and quiet > self.stall_timeout_s:
            return Health(
                False, f"the engine has made no progress for {quiet:.0f} s with work in hand", waiting, busy, error
            )
        return Health(True, "ready", waiting, busy, error)
