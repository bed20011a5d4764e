"""The engine in this process as a transport: no network, no payload limit, the same interface and errors.

Images are decoded with the server's decoder and limits, the prompt's ``<ImageHere>`` markers are placed by
the server's own rule, and parameters are read by the server's own model, so a request behaves the same
in process as over the wire.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

from PIL import Image

from pagescribe.client.base import DescribeResult, Invocation
from pagescribe.client.payload import ImageLike, label, read_image_bytes
from pagescribe.engine.base import CancelToken, Engine
from pagescribe.errors import EngineError
from pagescribe.images import ImageLimits, decode_image, image_from_pil
from pagescribe.types import GenerationRequest, GenerationResult, ImageInput, Message
from pagescribe.wire.params import SamplingFields
from pagescribe.wire.sagemaker import place_images

#: The server's pixel cap and downscaling; no byte cap, since nothing travels.
LOCAL_LIMITS = ImageLimits(max_bytes=2**40)


def to_image_input(image: ImageLike, *, index: int) -> ImageInput:
    """Any accepted image form as verified RGB pixels (``ImageError`` naming the file when it is not)."""
    if isinstance(image, ImageInput):
        return image
    if isinstance(image, Image.Image):
        return image_from_pil(image, max_side=LOCAL_LIMITS.max_side)
    data = read_image_bytes(image) if isinstance(image, str | os.PathLike) else bytes(image)
    return decode_image(data, limits=LOCAL_LIMITS, source=label(image, index))


def generation_request(call: Invocation) -> GenerationRequest:
    """The engine's request for ``call``, built as the server builds it from format A."""
    fields = SamplingFields.model_validate(call.parameters)
    images = [to_image_input(image, index=i) for i, image in enumerate(call.images)]
    message = Message("user", place_images(call.prompt, images, where="prompt"))
    return GenerationRequest(messages=(message,), params=fields.sampling_params(), time_limit_s=fields.time_limit_s)


class LocalTransport:
    """Runs invocations on ``engine``; at most ``engine.slots`` at once, the rest wait their turn."""

    def __init__(self, engine: Engine, *, owned: bool) -> None:
        self.engine = engine
        self._owned = owned
        self._slots = threading.BoundedSemaphore(max(1, engine.slots))

    def describe(self, call: Invocation) -> DescribeResult:
        for item in self._run(generation_request(call)):
            if isinstance(item, DescribeResult):
                return item
        raise EngineError("the engine ended without a result")  # pragma: no cover - _run always ends with one

    def stream(self, call: Invocation) -> Iterator[str | DescribeResult]:
        # The request is built now, so a bad image fails here rather than at the first read.
        return self._run(generation_request(call))

    def _run(self, request: GenerationRequest) -> Iterator[str | DescribeResult]:
        cancel = CancelToken()
        with self._slots:
            items = self.engine.stream(request, cancel=cancel)
            try:
                for item in items:
                    if isinstance(item, GenerationResult):
                        yield DescribeResult.from_generation(item)
                        return
                    yield item
            finally:
                # A reader that stops early (closes the stream) stops the generation and frees the slot.
                cancel.cancel()
                close = getattr(items, "close", None)
                if close is not None:
                    close()
        raise EngineError("the engine ended without a result")

    def close(self) -> None:
        if self._owned:
            self.engine.close()
