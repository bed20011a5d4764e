"""The engine protocol: the one queue every caller hands its requests to.

An engine accepts any number of submissions from any thread. It keeps a bounded waiting list (full: ``Overloaded``,
which the server answers with 503 and ``Retry-After``), holds each request to one absolute deadline
(``GenerationRequest.deadline``, set when the request arrived), and delivers each request's events to a *sink* the
caller gives it: text pieces as they are decoded, then exactly one final event, a ``GenerationResult`` or the
exception that ended the request. Sinks are called on the engine's own thread and must not block
(``sinks.py``: an iterator for blocking callers, an asyncio one for the server). Nobody in front of an engine
limits how many requests it sends: the engine decides what runs, what waits and what is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pagescribe.errors import EngineError
from pagescribe.types import GenerationRequest, GenerationResult

Event = str | GenerationResult | BaseException
#: Receives a request's events on the engine's thread; must return quickly and never raise on purpose.
Sink = Callable[[Event], None]


class CancelToken:
    """Tells a request to stop: set by a reader that went away or a shutting-down server."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(eq=False)
class Work:
    """One request handed to an engine: what to answer, where its events go, and how to call it off."""

    request: GenerationRequest
    sink: Sink
    cancel: CancelToken = field(default_factory=CancelToken)


@dataclass(frozen=True, slots=True)
class Health:
    """What ``/ping`` asks: can this engine take work and make progress with it?

    ``ok`` is false before ``load``, after ``close``, when the engine's thread has died, or when it has work but
    has not finished a step for longer than its stall timeout (a wedged native call). ``last_error`` is the most
    recent failure the engine survived, for the operator; it does not make the engine unhealthy by itself.
    """

    ok: bool
    reason: str
    waiting: int = 0
    busy: int = 0
    last_error: str | None = None


@runtime_checkable
class Engine(Protocol):
    """What the server, the clients and the pipeline need from a model backend."""

    @property
    def model_id(self) -> str:
        """A stable name for the model, reported in every response."""
        ...

    @property
    def slots(self) -> int:
        """How many requests generate together (more may wait in the queue)."""
        ...

    def load(self) -> None:
        """Load the model (blocking). Raises ``ModelError`` with the file and the reason when it cannot."""
        ...

    def submit(self, works: Sequence[Work], *, wait: bool = False) -> None:
        """Queue ``works``, all or none. A full queue raises ``Overloaded`` (or, with ``wait``, blocks until there
        is room); a closed or unloaded engine raises ``NotReady``. Each work's sink then gets its events."""
        ...

    def health(self) -> Health:
        """Whether the engine is serving, and the state of its queue. Never blocks on inference."""
        ...

    def close(self) -> None:
        """Fail what is still queued with ``NotReady``, stop, release the model. Safe to call twice."""
        ...


def final(stream: Iterable[str | GenerationResult]) -> GenerationResult:
    """Read a stream of events to its final result."""
    for item in stream:
        if isinstance(item, GenerationResult):
            return item
    raise EngineError("the engine ended without a result")
