"""The engine's life in the server: load in the background, hand requests to the engine's queue, stop cleanly.

The port opens before the model is loaded, so ``/ping`` can answer 503 "loading" and then 200. A model that
fails to load leaves the process up, ``/ping`` 503 with the reason (and the reason in the log), so the
failure is visible instead of a silent crash loop. Once loaded, ``/ping`` asks the engine itself
(``Engine.health``): a dead or wedged batch thread turns it 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import anyio

from pagescribe.engine.base import Engine
from pagescribe.engine.sinks import AsyncEvents
from pagescribe.errors import ModelError, NotReady
from pagescribe.server.metrics import Metrics
from pagescribe.server.settings import ServerSettings
from pagescribe.types import GenerationRequest

log = logging.getLogger("pagescribe.server")

State = Literal["loading", "ready", "failed", "stopping"]


class Runtime:
    """One engine and its state."""

    def __init__(self, engine: Engine, *, settings: ServerSettings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.state: State = "loading"
        self.reason = "the model is loading"
        self.started_at = int(time.time())
        self._loader: threading.Thread | None = None
        self._decode_limiter: anyio.CapacityLimiter | None = None

    def start(self) -> None:
        """Load the model on a background thread; returns at once."""
        self._loader = threading.Thread(target=self._load, name="pagescribe-load", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        began = time.monotonic()
        try:
            self.engine.load()
        except ModelError as exc:
            self._fail(f"the model could not be loaded: {exc.message}")
            return
        except Exception as exc:  # a defect, or a native library's surprise: keep the process up and say so
            log.exception("loading the model failed")
            self._fail(f"the model could not be loaded: {type(exc).__name__}: {exc}")
            return
        if self.state == "stopping":
            self.engine.close()
            return
        self.metrics.watch(self.engine)
        self.state, self.reason = "ready", "ready"
        log.info(
            "model loaded",
            extra={"model": self.engine.model_id, "slots": self.engine.slots, "load_s": time.monotonic() - began},
        )

    def _fail(self, reason: str) -> None:
        self.state, self.reason = "failed", reason
        log.error("model unavailable", extra={"reason": reason})

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/ping``'s status and body: ready only while the engine says it can make progress."""
        if self.state != "ready":
            return 503, {"status": self.state, "reason": self.reason}
        health = self.engine.health()
        if not health.ok:
            return 503, {"status": "unhealthy", "reason": health.reason, "last_error": health.last_error}
        return 200, {"status": "ready", "model": self.engine.model_id}

    def check_ready(self) -> None:
        """Refuse with ``NotReady`` while the model is not serving (before any work is spent on a request)."""
        if self.state != "ready":
            retry = 10.0 if self.state == "loading" else 60.0
            raise NotReady(self.reason, retry_after_s=retry)

    @property
    def decode_limiter(self) -> anyio.CapacityLimiter:
        """Bounds how many requests decode images at once, so a burst of large pages cannot exhaust memory
        (a decoded 64-megapixel image is ~200 MB) before the queue gets to refuse them."""
        if self._decode_limiter is None:
            self._decode_limiter = anyio.CapacityLimiter(max(2, self.engine.slots))  # made inside the loop
        return self._decode_limiter

    def submit(self, requests: Sequence[GenerationRequest], *, pieces: bool = True) -> list[AsyncEvents]:
        """Hand ``requests`` to the engine's queue (all or none; ``Overloaded`` when it is full) and return where
        their events arrive, on this event loop; without ``pieces``, only the final results (a non-streamed
        answer needs no token until the last)."""
        self.check_ready()
        loop = asyncio.get_running_loop()
        events = [AsyncEvents(loop, on_result=self.metrics.observe_result, pieces=pieces) for _ in requests]
        self.engine.submit([e.work(r) for e, r in zip(events, requests, strict=True)])
        return events

    def stop(self) -> None:
        """Close the engine (in-flight requests have had the server's grace period; what is left is cancelled)."""
        was_ready = self.state == "ready"
        self.state, self.reason = "stopping", "the server is shutting down"
        if was_ready:
            self.engine.close()
