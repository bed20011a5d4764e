"""What every transport shares: the request the client builds, the protocols transports implement, result streams.

A transport carries one ``GenerationRequest`` (the internal type: messages with text and image parts, sampling
parameters, a time budget) to a model and brings back text pieces and a ``GenerationResult``: ``HttpTransport``
(a pagescribe server), ``SageMakerTransport`` (boto3) and ``LocalTransport`` (the engine in this process).
``make_request`` checks parameters with the server's own rules, so a mistake is the same ``InvalidRequest``
whichever transport would have carried it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol, TypedDict

from PIL import Image
from pydantic import ValidationError

from pagescribe.errors import ImageError
from pagescribe.images import ImageLimits, decode_image, image_from_pil
from pagescribe.types import GenerationRequest, GenerationResult, ImageInput, Message
from pagescribe.wire.errors import from_validation
from pagescribe.wire.params import SamplingFields
from pagescribe.wire.sagemaker import place_images

#: SageMaker real-time hosting ends an invocation at 60 s; the client waits a little longer for the answer.
DEFAULT_READ_TIMEOUT_S = 70.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Requests a remote transport suggests keeping in flight: enough to keep a server's batch busy.
DEFAULT_CONCURRENCY = 4
#: What the client accepts as one image: a file path, encoded bytes, a Pillow image or a decoded image.
ImageLike = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | ImageInput
#: Remote transports check images but leave sizing to the server: no byte cap (the payload limit is the cap),
#: no downscaling; the pixel cap guards against decompression bombs in the client process.
CHECK_LIMITS = ImageLimits(max_bytes=2**40, max_side=None)
Item = str | GenerationResult


class Parameters(TypedDict, total=False):
    """Sampling parameters, with llama.cpp's names and meaning; what is left out keeps the server's default."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    seed: int
    stop: str | list[str]
    response_format: dict[str, Any]
    time_limit_s: float
    logprobs: bool
    top_logprobs: int


class Transport(Protocol):
    """Carries requests to a model. ``stream`` yields text pieces, then exactly one ``GenerationResult``."""

    #: How images are decoded and limited before they are put into a request for this transport.
    image_limits: ImageLimits

    @property
    def concurrency(self) -> int:
        """How many requests to keep in flight to keep the model behind this transport busy."""
        ...

    @property
    def target(self) -> str:
        """Where requests go (a server's URL, ``sagemaker:NAME``, ``local:MODEL``): a stable name for it."""
        ...

    def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def stream(self, request: GenerationRequest) -> Iterator[Item]: ...

    def model_id(self) -> str | None: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    """``Transport`` for asyncio: ``stream`` resolves once the answer has begun."""

    image_limits: ImageLimits

    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Item]: ...

    async def aclose(self) -> None: ...


def make_request(
    images: ImageLike | Sequence[ImageLike], prompt: str | None, parameters: Parameters, *, limits: ImageLimits
) -> GenerationRequest:
    """One user turn: ``prompt`` (default: the document prompt) with the images placed by its ``<ImageHere>``
    markers (without markers, before the text), sampling checked with the server's rules (``InvalidRequest``
    naming the field). Images are decoded and verified now (``ImageError`` naming the file)."""
    given = {name: value for name, value in parameters.items() if value is not None}
    try:
        fields = SamplingFields.model_validate(given)
    except ValidationError as exc:
        raise from_validation(exc, prefix="parameters") from exc
    decoded = [to_image_input(image, index=i, limits=limits) for i, image in enumerate(as_image_list(images))]
    text = default_prompt() if prompt is None else prompt
    message = Message("user", place_images(text, decoded, where="prompt"))
    return GenerationRequest(messages=(message,), params=fields.sampling_params(), time_limit_s=fields.time_limit_s)


def default_prompt() -> str:
    """The packaged document prompt (what ``describe`` and ``convert`` ask by default)."""
    from pagescribe.prompts import load_prompt

    return load_prompt("document").text


def is_single_image(value: object) -> bool:
    """Whether ``value`` is one image (as opposed to a sequence of them)."""
    return isinstance(value, str | os.PathLike | bytes | bytearray | memoryview | Image.Image | ImageInput)


def as_image_list(images: ImageLike | Sequence[ImageLike]) -> tuple[ImageLike, ...]:
    """One image or several, as a tuple."""
    if is_single_image(images):
        return (images,)  # type: ignore[return-value]  # narrowed by is_single_image
    return tuple(images)  # type: ignore[arg-type]


def label(image: ImageLike, index: int) -> str:
    """How errors and warnings name an image: its path, else its position."""
    if isinstance(image, str | os.PathLike):
        return os.fspath(image)
    return f"image {index + 1}"


def to_image_input(image: ImageLike, *, index: int, limits: ImageLimits) -> ImageInput:
    """Any accepted image form as verified RGB pixels, keeping the file bytes it came from (``encoded``)."""
    if isinstance(image, ImageInput):
        return image
    source = label(image, index)
    if isinstance(image, Image.Image):
        return dataclasses.replace(image_from_pil(image, max_side=limits.max_side), origin=source)
    data = read_image_bytes(image) if isinstance(image, str | os.PathLike) else bytes(image)
    pixels = decode_image(data, limits=limits, source=source)
    return dataclasses.replace(pixels, encoded=data, origin=source)


def read_image_bytes(image: str | os.PathLike[str]) -> bytes:
    """A file's bytes; a missing or unreadable file is an ``ImageError`` naming it."""
    path = os.fspath(image)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path}: is a directory, not an image file") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc


class DescriptionStream(Iterator[str]):
    """The text of one answer, piece by piece as it is generated; ``result`` holds the whole answer after.

    Use it in a ``with`` block (or call ``close``) when you may stop early: that releases the connection,
    and the model stops generating.
    """

    def __init__(self, items: Iterator[Item]) -> None:
        self._items = items
        self._result: GenerationResult | None = None

    def __iter__(self) -> DescriptionStream:
        return self

    def __next__(self) -> str:
        if self._result is not None:
            raise StopIteration
        item = next(self._items)
        if isinstance(item, GenerationResult):
            self._result = item
            self.close()
            raise StopIteration
        return item

    @property
    def result(self) -> GenerationResult:
        """The complete answer; available once the stream has been read to its end."""
        if self._result is None:
            raise RuntimeError("the stream has not ended yet: iterate over it first")
        return self._result

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> DescriptionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncDescriptionStream:
    """The text of one answer as it is generated (``async for``); ``result`` holds the whole answer after."""

    def __init__(self, items: AsyncIterator[Item]) -> None:
        self._items = items
        self._result: GenerationResult | None = None

    def __aiter__(self) -> AsyncDescriptionStream:
        return self

    async def __anext__(self) -> str:
        if self._result is not None:
            raise StopAsyncIteration
        item = await anext(self._items)
        if isinstance(item, GenerationResult):
            self._result = item
            await self.aclose()
            raise StopAsyncIteration
        return item

    @property
    def result(self) -> GenerationResult:
        """The complete answer; available once the stream has been read to its end."""
        if self._result is None:
            raise RuntimeError("the stream has not ended yet: iterate over it first")
        return self._result

    async def aclose(self) -> None:
        close = getattr(self._items, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> AsyncDescriptionStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
