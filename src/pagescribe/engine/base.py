"""The engine protocol.

An engine is synchronous and single-minded: ``stream`` runs one request on the calling thread, yielding text
pieces as they are decoded and then exactly one ``GenerationResult``. Concurrency, queues and time-outs around it
belong to the scheduler (server) or the caller (CLI, pipeline), which call ``stream`` from worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from pagescribe.errors import EngineError
from pagescribe.types import GenerationRequest, GenerationResult


class CancelToken:
    """Tells a running generation to stop: set by a disconnecting client or a shutting-down server."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Deadline:
    """A wall-clock budget; ``None`` seconds means no limit."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


@runtime_checkable
class Engine(Protocol):
    """What the server, the CLI and the pipeline need from a model backend."""

    @property
    def model_id(self) -> str:
        """A stable name for the loaded model, reported in every response."""
        ...

    @property
    def slots(self) -> int:
        """How many requests may call ``stream`` at the same time."""
        ...

    def load(self) -> None:
        """Load the model (blocking). Raises ``ModelError`` with the file and the reason when it cannot."""
        ...

    def stream(
        self, request: GenerationRequest, *, cancel: CancelToken | None = None
    ) -> Iterator[str | GenerationResult]:
        """Yield decoded text pieces, then one final ``GenerationResult`` whose text is their concatenation."""
        ...

    def close(self) -> None:
        """Release the model. Safe to call twice."""
        ...


def collect(engine: Engine, request: GenerationRequest, *, cancel: CancelToken | None = None) -> GenerationResult:
    """Run ``request`` to the end and return only the final result."""
    return final(engine.stream(request, cancel=cancel))


def final(stream: Iterable[str | GenerationResult]) -> GenerationResult:
    """Read a stream (``Engine.stream``'s) to its final result."""
    for item in stream:
        if isinstance(item, GenerationResult):
            return item
    raise EngineError("the engine ended without a result")
