"""A scripted engine for tests of the layers above the engine: no model, deterministic, observable.

It is an engine like the real one from the outside: one queue (``queue.py``: the same admission, waiting list and
deadlines), one loop thread, ``n_slots`` requests answered together a word per step, events handed to sinks.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pagescribe.engine.base import Health, Work
from pagescribe.engine.queue import Heartbeat, Job, WorkQueue
from pagescribe.errors import EngineError, ModelError, NotReady, PagescribeError
from pagescribe.models.families import Family
from pagescribe.types import FinishReason, GenerationRequest, GenerationResult, Timings, TokenLogprob, Usage

log = logging.getLogger("pagescribe.engine")


@dataclass(eq=False)
class _Running:
    job: Job
    pieces: list[str]
    started: float = field(default_factory=time.perf_counter)
    out: list[str] = field(default_factory=list)


@dataclass(eq=False)
class FakeEngine:
    """Answers every request with ``reply`` (or the next of ``replies``, or what ``answer`` makes of the request),
    one word per token; a dialog ending with the beginning of that reply (an assistant message) gets the rest.

    ``token_delay_s`` makes each step (a word for every running request) take time (for health, time-limit and
    cancellation tests); ``fail_on`` makes requests whose text contains that string fail with ``EngineError``;
    ``error`` makes every request fail with it after ``error_after`` words, as the real engine fails: one of
    pagescribe's errors reaches the reader as it is, anything else is logged as a defect and reaches the reader
    as ``EngineError``; ``load_error`` makes ``load`` fail; asked for logprobs, every word gets ``FAKE_LOGPROB``;
    every request received is kept in ``requests``, and
    ``peak_running`` is the most that ran at once.
    """

    reply: str = "The process flow starts with X then we have Y and Z."
    replies: list[str] = field(default_factory=list)
    answer: Callable[[GenerationRequest], str] | None = None
    token_delay_s: float = 0.0
    load_delay_s: float = 0.0
    fail_on: str | None = None
    error: BaseException | None = None
    error_after: int = 0
    load_error: str | None = None
    model_name: str = "fake-model"
    n_slots: int = 1
    queue_size: int = 16
    retry_after_s: float = 2.0
    stall_timeout_s: float = 60.0
    family: Family | None = None  # as LlamaCppEngine.family: the model family the engine serves (a fake: none)
    requests: list[GenerationRequest] = field(default_factory=list)
    peak_running: int = 0
    loaded: bool = False
    closed: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._queue = WorkQueue(slots=self.n_slots, queue_size=self.queue_size, retry_after_s=self.retry_after_s)
        self._heartbeat = Heartbeat(stall_timeout_s=self.stall_timeout_s)
        self._running: list[_Running] = []
        self._thread: threading.Thread | None = None

    @property
    def model_id(self) -> str:
        return self.model_name

    @property
    def slots(self) -> int:
        return self.n_slots

    def load(self) -> None:
        time.sleep(self.load_delay_s)
        if self.load_error:
            raise ModelError(self.load_error)
        self._start_loop()
        self.loaded = True

    def _start_loop(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="fake-engine", daemon=True)
                self._thread.start()

    def submit(self, works: Sequence[Work], *, wait: bool = False) -> None:
        """As the real engine's; a fake needs no loading, so work sent before ``load`` is served too."""
        self._start_loop()
        self._queue.submit(works, wait=wait)

    def health(self) -> Health:
        if self.closed:
            return Health(False, "the engine is closed")
        return self._heartbeat.health(thread=self._thread, queue=self._queue, busy=len(self._running))

    def close(self) -> None:
        self.closed = True
        self._queue.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the loop ------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while self._queue.wait_for_work(busy=bool(self._running)):
            self._heartbeat.beat()
            self._admit()
            self._step()
        for run in self._running:
            self._end(run, "cancelled")
        for job in self._queue.take():
            job.finish(NotReady("the engine is shutting down"))

    def _admit(self) -> None:
        waiting = self._queue.take()
        held = []
        for job in waiting:
            if job.stop_reason() == "cancelled":
                job.finish(job.empty_result("cancelled", self.model_id))
            elif len(self._running) >= self.n_slots:
                held.append(job)
            else:
                self._start(job)
        self._queue.hold(held)

    def _start(self, job: Job) -> None:
        request = job.request
        with self._lock:
            self.requests.append(request)
            reply = self.replies.pop(0) if self.replies else self.answer(request) if self.answer else self.reply
        prompt_text = " ".join(m.text for m in request.messages)
        if self.fail_on is not None and self.fail_on in prompt_text:
            job.finish(EngineError(f"scripted failure for a prompt containing {self.fail_on!r}"))
            return
        last = request.messages[-1]
        if len(request.messages) > 1 and last.role == "assistant":  # continue the answer after its beginning
            reply = reply[len(last.text):] if reply.startswith(last.text) else reply
        self._running.append(_Running(job, re.findall(r"\s*\S+", reply)))
        self.peak_running = max(self.peak_running, len(self._running))

    def _step(self) -> None:
        if not self._running:
            return
        if self.token_delay_s:
            time.sleep(self.token_delay_s)
        now = time.monotonic()
        for run in list(self._running):
            reason = run.job.stop_reason(now)
            if reason == "time_limit" and not run.out:  # as the real engine: one step, however late
                reason = None
            if reason is None and len(run.out) >= run.job.request.params.max_tokens:
                reason = "length"
            if reason is None and len(run.out) == len(run.pieces):
                reason = "stop"
            if reason is not None:
                self._end(run, reason)
                continue
            if self.error is not None and len(run.out) >= self.error_after:
                self._fail(run, self.error)
                continue
            piece = run.pieces[len(run.out)]
            run.out.append(piece)
            run.job.emit(piece)

    def _fail(self, run: _Running, error: BaseException) -> None:
        self._running.remove(run)
        if isinstance(error, PagescribeError):
            run.job.finish(error)
            return
        try:
            raise error
        except Exception as exc:
            log.exception("batch step failed")
            run.job.finish(EngineError(f"inference failed: {exc}"))

    def _end(self, run: _Running, finish: FinishReason) -> None:
        self._running.remove(run)
        request = run.job.request
        prompt_tokens = len(" ".join(m.text for m in request.messages).split()) + 16 * len(request.images)
        run.job.finish(GenerationResult(
            text="".join(run.out),
            finish_reason=finish,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(run.out)),
            timings=Timings(generate_ms=(time.perf_counter() - run.started) * 1000),
            model=self.model_id,
            logprobs=_logprobs(run.out, request.params.logprobs),
        ))


#: The log-probability the fake gives every word it says (its alternatives are less likely by 1 each).
FAKE_LOGPROB = -0.25


def _logprobs(words: list[str], top: int | None) -> tuple[TokenLogprob, ...] | None:
    if top is None:
        return None
    return tuple(
        TokenLogprob(w, FAKE_LOGPROB, w.encode(), i, tuple(TokenLogprob(w, FAKE_LOGPROB - k, w.encode(), i)
                                                          for k in range(top)))
        for i, w in enumerate(words)
    )
