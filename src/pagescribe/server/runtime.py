"""The engine's life in the server: load in the background, serve through the scheduler, stop cleanly.

The port opens before the model is loaded, so ``/ping`` can answer 503 "loading" and then 200. A model that
fails to load leaves the process up, ``/ping`` 503 with the reason (and the reason in the log), so the
failure is visible instead of a silent crash loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import anyio

from pagescribe.engine.base import Engine
from pagescribe.errors import ModelError, NotReady
from pagescribe.server.metrics import Metrics
from pagescribe.server.scheduler import Job, Scheduler
from pagescribe.server.settings import ServerSettings
from pagescribe.types import GenerationRequest

log = logging.getLogger("pagescribe.server")

State = Literal["loading", "ready", "failed", "stopping"]


class Runtime:
    """One engine, its state and its scheduler."""

    def __init__(self, engine: Engine, *, settings: ServerSettings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.state: State = "loading"
        self.reason = "the model is loading"
        self.started_at = int(time.time())
        self.scheduler: Scheduler | None = None
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
        scheduler = self._make_scheduler()
        scheduler.start()
        self.scheduler = scheduler
        self.state, self.reason = "ready", "ready"
        self.metrics.ready.set(1)
        self.metrics.slots.set(scheduler.workers)
        log.info(
            "model loaded",
            extra={
                "model": self.engine.model_id,
                "slots": scheduler.workers,
                "load_s": time.monotonic() - began,
            },
        )

    def _make_scheduler(self) -> Scheduler:
        offered = max(1, self.engine.slots)
        wanted = self.settings.slots
        if wanted is not None and wanted > offered:
            log.warning("the engine offers fewer slots than asked", extra={"slots": offered, "asked": wanted})
        return Scheduler(
            self.engine,
            workers=offered if wanted is None else min(wanted, offered),
            queue_size=self.settings.queue_size,
            retry_after_s=self.settings.retry_after_s,
            on_result=self.metrics.observe_result,
            on_change=self.metrics.observe_queue,
        )

    def _fail(self, reason: str) -> None:
        self.state, self.reason = "failed", reason
        log.error("model unavailable", extra={"reason": reason})

    @property
    def workers(self) -> int:
        if self.scheduler is not None:
            return self.scheduler.workers
        return self.settings.slots or 1

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/ping``'s status and body."""
        if self.state == "ready":
            return 200, {"status": "ready", "model": self.engine.model_id}
        return 503, {"status": self.state, "reason": self.reason}

    def check_ready(self) -> None:
        """Refuse with ``NotReady`` while the model is not serving (before any work is spent on a request)."""
        if self.state != "ready" or self.scheduler is None:
            retry = 10.0 if self.state == "loading" else 60.0
            raise NotReady(self.reason, retry_after_s=retry)

    @property
    def decode_limiter(self) -> anyio.CapacityLimiter:
        """Bounds how many requests decode images at once, so a burst of large pages cannot exhaust memory
        (a decoded 64-megapixel image is ~200 MB) before the queue gets to refuse them."""
        if self._decode_limiter is not None:
            return self._decode_limiter
        limiter = anyio.CapacityLimiter(max(2, self.workers))  # made inside the event loop, on first use
        if self.scheduler is not None:  # kept once the slot count is known (a request may come while loading)
            self._decode_limiter = limiter
        return limiter

    def submit(self, requests: Sequence[GenerationRequest], *, deadline: float | None) -> list[Job]:
        """Queue requests on the scheduler, or refuse with ``NotReady`` while the model is not serving."""
        self.check_ready()
        assert self.scheduler is not None
        return self.scheduler.submit(requests, deadline=deadline)

    def stop(self) -> None:
        """Stop the workers (in-flight requests have had the server's grace period), then free the model."""
        was_ready = self.state == "ready"
        self.state, self.reason = "stopping", "the server is shutting down"
        self.metrics.ready.set(0)
        if self.scheduler is not None and not self.scheduler.stop(timeout_s=5.0):
            log.warning("a generation did not stop in time; leaving the model loaded")
            return
        if was_ready:
            self.engine.close()
