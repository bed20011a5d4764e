"""Runs engine work off the event loop: worker threads, a bounded queue, deadlines and cancellation.

The engine is synchronous (``Engine.stream`` runs on the calling thread), so ``workers`` threads (one per
engine slot) take jobs from a queue and stream each job's pieces back to its asyncio consumer through
``loop.call_soon_threadsafe``. The event loop only ever moves strings around, which is why ``/ping`` stays
fast while every slot is busy.

Admission is decided when a request arrives: if its jobs would not fit in the free slots plus ``queue_size``
waiting places, the request is refused at once with ``Overloaded`` (503 + Retry-After) instead of waiting
forever. An idle scheduler admits anything, so a request with more dialogs than that is never starved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from pagescribe.engine.base import CancelToken, Engine
from pagescribe.errors import EngineError, Overloaded, PagescribeError, ServiceUnavailable
from pagescribe.types import GenerationRequest, GenerationResult, Timings, Usage

log = logging.getLogger("pagescribe.scheduler")

Item = str | GenerationResult
_END: Final = object()


class Job:
    """One generation in flight: its request, absolute deadline, cancel token and output channel."""

    def __init__(self, request: GenerationRequest, *, deadline: float | None, loop: asyncio.AbstractEventLoop):
        self.request = request
        self.deadline = deadline
        self.cancel = CancelToken()
        self._loop = loop
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._finished = False

    # -- worker side -------------------------------------------------------------------------------------

    def emit(self, item: object) -> None:
        """Hand ``item`` to the consumer (any thread); dropped if the loop is gone."""
        try:
            self._loop.call_soon_threadsafe(self._out.put_nowait, item)
        except RuntimeError:  # the loop closed: nobody is listening any more
            self.cancel.cancel()

    # -- consumer side -----------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Item]:
        """Text pieces, then one ``GenerationResult``; raises what the engine raised.

        Leaving early (a client that went away, a cancelled task) cancels the generation, freeing its slot.
        """
        try:
            while True:
                item = await self._out.get()
                if item is _END:
                    self._finished = True
                    return
                if isinstance(item, BaseException):
                    self._finished = True
                    raise item
                assert isinstance(item, str | GenerationResult)
                yield item
        finally:
            if not self._finished:
                self.cancel.cancel()

    async def result(self) -> GenerationResult:
        """Wait for the final result (the text pieces are dropped)."""
        final: GenerationResult | None = None
        async for item in self.events():
            if isinstance(item, GenerationResult):
                final = item
        if final is None:
            raise EngineError("the engine ended without a result")
        return final


class Scheduler:
    """Worker threads in front of one engine; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        workers: int,
        queue_size: int,
        retry_after_s: float = 2.0,
        on_result: Callable[[GenerationResult], None] | None = None,
        on_change: Callable[[int, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.workers = max(1, workers)
        self.queue_size = queue_size
        self.retry_after_s = retry_after_s
        self._on_result = on_result
        self._on_change = on_change
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._busy = 0
        self._running: set[Job] = set()
        self._threads: list[threading.Thread] = []
        self._accepting = False

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def busy(self) -> int:
        return self._busy

    def start(self) -> None:
        """Start the worker threads; jobs are accepted from now on."""
        self._accepting = True
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"pagescribe-slot-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, requests: Sequence[GenerationRequest], *, deadline: float | None) -> list[Job]:
        """Queue ``requests`` (all or none), from the event loop; ``deadline`` is on ``time.monotonic()``."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._accepting:
                raise ServiceUnavailable("the server is shutting down", retry_after_s=self.retry_after_s)
            in_system = self._waiting + self._busy
            if in_system and in_system + len(requests) > self.workers + self.queue_size:
                raise Overloaded(
                    f"the queue is full ({self._waiting} request(s) waiting for {self.workers} slot(s))",
                    retry_after_s=self.retry_after_s,
                )
            jobs = [Job(r, deadline=deadline, loop=loop) for r in requests]
            self._waiting += len(jobs)
        for job in jobs:
            self._jobs.put(job)
        self._changed()
        return jobs

    def stop(self, *, timeout_s: float) -> bool:
        """Refuse new work, cancel whatever is left, and wait for the workers; ``True`` if they all ended."""
        with self._lock:
            self._accepting = False
            running = list(self._running)
        for job in running:
            job.cancel.cancel()
        for _ in self._threads:
            self._jobs.put(None)
        end = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    # -- worker threads ----------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
                self._busy += 1
                self._running.add(job)
            self._changed()
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._running.discard(job)
                self._changed()

    def _run(self, job: Job) -> None:
        try:
            if job.cancel.cancelled:
                return
            if not self._accepting:
                job.emit(ServiceUnavailable("the server is shutting down", retry_after_s=self.retry_after_s))
                return
            remaining = None if job.deadline is None else job.deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                # The budget went on waiting: answer "time_limit" with no text rather than start too late.
                self._finish(job, _timed_out(self.engine.model_id))
                return
            request = dataclasses.replace(job.request, time_limit_s=remaining)
            for item in self.engine.stream(request, cancel=job.cancel):
                if isinstance(item, GenerationResult):
                    self._finish(job, item)
                else:
                    job.emit(item)
        except PagescribeError as exc:
            job.emit(exc)
        except Exception as exc:  # a defect in the engine: log it here, where the traceback is
            log.exception("generation failed", extra={"request_id": job.request.request_id})
            job.emit(EngineError(f"the engine failed: {type(exc).__name__}"))
        finally:
            job.emit(_END)

    def _finish(self, job: Job, result: GenerationResult) -> None:
        job.emit(result)
        if self._on_result is not None:
            self._on_result(result)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._waiting, self._busy)


def _timed_out(model: str) -> GenerationResult:
    return GenerationResult(text="", finish_reason="time_limit", usage=Usage(), timings=Timings(), model=model)
