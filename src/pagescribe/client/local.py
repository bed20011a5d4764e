"""The engine in this process as a transport: no network, no payload limit, the same interface and errors.

Images are decoded with the server's decoder and limits (``LOCAL_LIMITS``), the prompt's ``<ImageHere>`` markers
are placed by the server's own rule, and parameters are read by the server's own model, so a request behaves the
same in process as over the wire. Requests go straight to the engine's queue, which decides what runs and what
waits; a blocking caller waits for room there, an asyncio caller gets its events on its own loop (no threads).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator

from pagescribe.engine import sinks
from pagescribe.engine.base import Engine
from pagescribe.engine.sinks import AsyncEvents, Item
from pagescribe.errors import Overloaded
from pagescribe.images import ImageLimits, image_from_pil, to_pil
from pagescribe.types import GenerationRequest, GenerationResult, ImageInput, ImagePart, Message

#: The server's pixel cap and downscaling; no byte cap, since nothing travels.
LOCAL_LIMITS = ImageLimits(max_bytes=2**40)


def fit_images(request: GenerationRequest, *, max_side: int | None = LOCAL_LIMITS.max_side) -> GenerationRequest:
    """``request`` with every image larger than ``max_side`` downscaled to it, as the server would."""
    if max_side is None or all(max(i.width, i.height) <= max_side for i in request.images):
        return request
    messages = tuple(
        Message(m.role, tuple(ImagePart(_fit(p.image, max_side)) if isinstance(p, ImagePart) else p for p in m.parts))
        for m in request.messages
    )
    return dataclasses.replace(request, messages=messages)


def _fit(image: ImageInput, max_side: int) -> ImageInput:
    if max(image.width, image.height) <= max_side:
        return image
    return dataclasses.replace(image_from_pil(to_pil(image), max_side=max_side), origin=image.origin)


class LocalTransport:
    """Runs requests on ``engine``; ``owned``: the transport loaded it, and closes it."""

    image_limits = LOCAL_LIMITS

    def __init__(self, engine: Engine, *, owned: bool) -> None:
        self.engine = engine
        self._owned = owned

    @property
    def concurrency(self) -> int:
        return max(1, self.engine.slots)

    @property
    def target(self) -> str:
        return f"local:{self.engine.model_id}"

    def generate(self, request: GenerationRequest) -> GenerationResult:
        return sinks.collect(self.engine, fit_images(request))

    def stream(self, request: GenerationRequest) -> Iterator[Item]:
        # Submitted now, so a refused request fails here rather than at the first read.
        return sinks.stream(self.engine, fit_images(request))

    def model_id(self) -> str | None:
        return self.engine.model_id

    def close(self) -> None:
        if self._owned:
            self.engine.close()


class AsyncLocalTransport:
    """The same for asyncio: the engine posts each event to the caller's loop."""

    image_limits = LOCAL_LIMITS

    def __init__(self, engine: Engine, *, owned: bool) -> None:
        self.engine = engine
        self._owned = owned

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        events = await self._submit(request, pieces=False)
        return await events.result()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Item]:
        events = await self._submit(request, pieces=True)
        return events.events()

    async def _submit(self, request: GenerationRequest, *, pieces: bool) -> AsyncEvents:
        events = AsyncEvents(asyncio.get_running_loop(), pieces=pieces)
        work = events.work(fit_images(request))
        try:
            self.engine.submit([work])
        except Overloaded:  # wait for room, as blocking callers do, on a thread so the loop goes on meanwhile
            await asyncio.to_thread(self.engine.submit, [work], wait=True)
        return events

    async def aclose(self) -> None:
        if self._owned:
            await asyncio.to_thread(self.engine.close)
