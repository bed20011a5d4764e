"""Ways to read a request's events from an engine: a plain iterator for blocking code, an asyncio one for the server.

Both are sinks (the engine calls them on its thread with each event) and readers (the caller iterates them). A
reader that stops early cancels its request, so its slot is freed at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from pagescribe.engine.base import CancelToken, Engine, Event, Work, final
from pagescribe.errors import EngineError
from pagescribe.types import GenerationRequest, GenerationResult

Item = str | GenerationResult


class _Reader:
    """What both readers share: the request's cancel token, and reading one event (the last ends the reading)."""

    def __init__(self, cancel: CancelToken | None) -> None:
        self.cancel = cancel or CancelToken()
        self._ended = False

    def _read(self, event: Event) -> Item:
        """The event as an item; the final result ends the reading, an exception ends it by being raised."""
        self._ended = isinstance(event, BaseException | GenerationResult)
        if isinstance(event, BaseException):
            raise event
        return event

    def _left(self) -> None:
        if not self._ended:
            self.cancel.cancel()  # the reader left before the end: stop generating


class Events(_Reader):
    """A blocking iterator over one request's text pieces and final result (raises what ended it)."""

    def __init__(self, cancel: CancelToken | None = None) -> None:
        super().__init__(cancel)
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def __call__(self, event: Event) -> None:
        self._queue.put(event)

    def __iter__(self) -> Iterator[Item]:
        try:
            while not self._ended:
                yield self._read(self._queue.get())
        finally:
            self._left()


def stream(engine: Engine, request: GenerationRequest, *, cancel: CancelToken | None = None) -> Iterator[Item]:
    """Submit ``request`` (waiting for room in the queue) and yield its pieces, then its ``GenerationResult``."""
    events = Events(cancel)
    engine.submit([Work(request, events, events.cancel)], wait=True)
    return iter(events)


def collect(engine: Engine, request: GenerationRequest, *, cancel: CancelToken | None = None) -> GenerationResult:
    """Run ``request`` to the end and return only the final result."""
    return final(stream(engine, request, cancel=cancel))


class AsyncEvents(_Reader):
    """One request's events delivered to an asyncio loop, posted from the engine's thread.

    The loop is woken once for whatever arrived since it last looked, not once per token: while it is busy,
    pieces collect and go over together. With ``pieces=False`` (a caller that wants only the answer) text pieces
    are not delivered at all, so the loop wakes once per request. ``on_result`` runs on the loop when the final
    result arrives (the server counts it in its metrics). Leaving ``events`` early (a client that went away, a
    cancelled task) cancels the request.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        on_result: Callable[[GenerationResult], None] | None = None,
        pieces: bool = True,
    ) -> None:
        super().__init__(None)
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._on_result = on_result
        self._pieces = pieces
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self._posted = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, str) and not self._pieces:
            return
        with self._lock:
            self._pending.append(event)
            if self._posted:
                return
            self._posted = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            self.cancel.cancel()

    def _drain(self) -> None:
        with self._lock:
            events, self._pending, self._posted = self._pending, [], False
        for event in events:
            if isinstance(event, GenerationResult) and self._on_result is not None:
                self._on_result(event)
            self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[Item]:
        """Text pieces, then the ``GenerationResult``; raises what the engine raised."""
        try:
            while not self._ended:
                yield self._read(await self._queue.get())
        finally:
            self._left()

    async def result(self) -> GenerationResult:
        """Wait for the final result (the text pieces are dropped)."""
        async for item in self.events():
            if isinstance(item, GenerationResult):
                return item
        raise EngineError("the engine ended without a result")  # pragma: no cover - events ends with one

    def work(self, request: GenerationRequest) -> Work:
        """The ``Work`` that sends ``request``'s events here."""
        return Work(request, self, self.cancel)
