"""An engine built when it loads, so finding (or downloading) the model happens after the port opens."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pagescribe.engine.base import CancelToken, Engine
from pagescribe.errors import NotReady
from pagescribe.types import GenerationRequest, GenerationResult


class LazyEngine:
    """Wraps ``build()``: ``load`` builds the real engine and loads it; until then nothing is touched.

    A failure in ``build`` (no model files, a bad manifest) is a load failure like any other: ``/ping`` says
    503 with the reason instead of the process exiting before SageMaker can see why.
    """

    def __init__(self, build: Callable[[], Engine], *, model_id: str = "pagescribe", slots: int = 1) -> None:
        self._build = build
        self._model_id = model_id
        self._slots = slots
        self._inner: Engine | None = None

    @property
    def inner(self) -> Engine | None:
        return self._inner

    @property
    def model_id(self) -> str:
        return self._model_id if self._inner is None else self._inner.model_id

    @property
    def slots(self) -> int:
        return self._slots if self._inner is None else self._inner.slots

    def load(self) -> None:
        engine = self._build()
        engine.load()
        self._inner = engine

    def stream(
        self, request: GenerationRequest, *, cancel: CancelToken | None = None
    ) -> Iterator[str | GenerationResult]:
        if self._inner is None:
            raise NotReady("the model is not loaded")
        return self._inner.stream(request, cancel=cancel)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
