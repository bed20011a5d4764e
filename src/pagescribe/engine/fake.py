"""A scripted engine for tests of the layers above the engine: no model, deterministic, observable."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from pagescribe.engine.base import CancelToken, Deadline
from pagescribe.errors import EngineError, ModelError
from pagescribe.types import FinishReason, GenerationRequest, GenerationResult, Timings, Usage


@dataclass
class FakeEngine:
    """Answers every request with ``reply`` (or the next of ``replies``), one word per token.

    ``token_delay_s`` makes generation take time (for health, time-limit and cancellation tests);
    ``fail_on`` makes requests whose text contains that string raise ``EngineError``;
    ``load_error`` makes ``load`` fail; every request received is kept in ``requests``.
    """

    reply: str = "The process flow starts with X then we have Y and Z."
    replies: list[str] = field(default_factory=list)
    token_delay_s: float = 0.0
    load_delay_s: float = 0.0
    fail_on: str | None = None
    load_error: str | None = None
    model_name: str = "fake-model"
    n_slots: int = 1
    requests: list[GenerationRequest] = field(default_factory=list)
    loaded: bool = False
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        self.loaded = True

    def close(self) -> None:
        self.closed = True

    def _next_reply(self) -> str:
        with self._lock:
            return self.replies.pop(0) if self.replies else self.reply

    def stream(
        self, request: GenerationRequest, *, cancel: CancelToken | None = None
    ) -> Iterator[str | GenerationResult]:
        with self._lock:
            self.requests.append(request)
        prompt_text = " ".join(m.text for m in request.messages)
        if self.fail_on is not None and self.fail_on in prompt_text:
            raise EngineError(f"scripted failure for a prompt containing {self.fail_on!r}")
        deadline = Deadline(request.time_limit_s)
        words = self._next_reply().split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        out: list[str] = []
        finish: FinishReason = "stop"
        started = time.perf_counter()
        for n, piece in enumerate(pieces):
            if n >= request.params.max_tokens:
                finish = "length"
                break
            if cancel is not None and cancel.cancelled:
                finish = "cancelled"
                break
            if deadline.expired:
                finish = "time_limit"
                break
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            out.append(piece)
            yield piece
        prompt_tokens = len(prompt_text.split()) + 16 * len(request.images)
        yield GenerationResult(
            text="".join(out),
            finish_reason=finish,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(out)),
            timings=Timings(generate_ms=(time.perf_counter() - started) * 1000),
            model=self.model_id,
        )
