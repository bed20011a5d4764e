"""Prometheus metrics, kept in a registry of the app's own so that several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pagescribe.engine.base import Engine
from pagescribe.types import GenerationResult

CONTENT_TYPE = CONTENT_TYPE_LATEST
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 120, 300)


class Metrics:
    """The service's instruments; ``render()`` is the ``/metrics`` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "pagescribe_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "pagescribe_request_seconds", "Time to answer a request", ["route"], buckets=_SECONDS, registry=r
        )
        self.queue_depth = Gauge("pagescribe_queue_depth", "Generations waiting for a slot", registry=r)
        self.busy_slots = Gauge("pagescribe_busy_slots", "Slots generating now", registry=r)
        self.slots = Gauge("pagescribe_slots", "Slots the engine offers", registry=r)
        self.ready = Gauge("pagescribe_model_ready", "1 once the model is loaded and serving", registry=r)
        self.prompt_tokens = Counter("pagescribe_prompt_tokens", "Prompt tokens, evaluated or reused", registry=r)
        self.cached_prompt_tokens = Counter(
            "pagescribe_cached_prompt_tokens", "Prompt tokens reused from the prefix cache, not evaluated", registry=r
        )
        self.completion_tokens = Counter("pagescribe_completion_tokens", "Tokens generated", registry=r)
        self.generations = Counter(
            "pagescribe_generations", "Finished generations by finish reason", ["finish_reason"], registry=r
        )
        self.image_encode_seconds = self._stage("image_encode", "Encoding images")
        self.prompt_seconds = self._stage("prompt", "Evaluating the prompt")
        self.generate_seconds = self._stage("generate", "Generating tokens")

    def _stage(self, name: str, what: str) -> Histogram:
        return Histogram(
            f"pagescribe_{name}_seconds", f"{what}, per generation", buckets=_SECONDS, registry=self.registry
        )

    def watch(self, engine: Engine) -> None:
        """Read the queue's depth, the busy slots and readiness from the engine itself, at every scrape."""
        self.queue_depth.set_function(lambda: engine.health().waiting)
        self.busy_slots.set_function(lambda: engine.health().busy)
        self.ready.set_function(lambda: float(engine.health().ok))
        self.slots.set(engine.slots)

    def observe_result(self, result: GenerationResult) -> None:
        """Count one finished generation (on the event loop, as its result arrives). A request cancelled while it
        waited in the queue never became a generation, and is not counted."""
        if result.finish_reason == "cancelled" and not result.usage.prompt_tokens:
            return
        self.prompt_tokens.inc(result.usage.prompt_tokens)
        self.cached_prompt_tokens.inc(result.usage.cached_tokens)
        self.completion_tokens.inc(result.usage.completion_tokens)
        self.generations.labels(finish_reason=result.finish_reason).inc()
        self.image_encode_seconds.observe(result.timings.image_encode_ms / 1000)
        self.prompt_seconds.observe(result.timings.prompt_ms / 1000)
        self.generate_seconds.observe(result.timings.generate_ms / 1000)

    def observe_request(self, *, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.request_seconds.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
