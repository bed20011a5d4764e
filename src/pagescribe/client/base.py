"""The one client interface: ``Client.describe`` / ``Client.stream`` over any transport, and its result type.

A transport carries one ``Invocation`` (prompt, images, parameters) to a model and brings back text pieces
and a ``DescribeResult``: ``SageMakerTransport`` (boto3), ``HttpTransport`` (httpx, a pagescribe server) and
``LocalTransport`` (the engine in this process). Parameters are checked here, with the server's own rules,
so a mistake is the same ``InvalidRequest`` whichever transport would have carried it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack

from pydantic import ValidationError

from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT, ImageLike, as_image_list
from pagescribe.client.retry import RetryPolicy
from pagescribe.types import GenerationResult, Timings, Usage
from pagescribe.wire.errors import from_validation
from pagescribe.wire.params import SamplingFields

if TYPE_CHECKING:
    import httpx

    from pagescribe.engine.base import Engine

#: SageMaker real-time hosting ends an invocation at 60 s; the client waits a little longer for the answer.
DEFAULT_READ_TIMEOUT_S = 70.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0


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


@dataclass(frozen=True, slots=True)
class DescribeResult:
    """What the model said: the text, why it stopped (``stop``, ``length``, ``time_limit``), tokens, timings."""

    text: str
    finish_reason: str
    usage: Usage
    timings: Timings
    model: str

    @classmethod
    def from_generation(cls, result: GenerationResult) -> DescribeResult:
        return cls(result.text, result.finish_reason, result.usage, result.timings, result.model)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the shape of the server's answer fields)."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.as_dict(),
            "timings": self.timings.as_dict(),
            "model": self.model,
        }


@dataclass(frozen=True, slots=True)
class Invocation:
    """One request as the transports see it: ``parameters`` are checked format-A ``parameters``."""

    prompt: str
    images: tuple[ImageLike, ...]
    parameters: dict[str, Any]


def make_invocation(images: ImageLike | Sequence[ImageLike], prompt: str | None, parameters: Parameters) -> Invocation:
    """Check the parameters with the server's rules (``InvalidRequest`` naming the field) and bundle them."""
    given = {name: value for name, value in parameters.items() if value is not None}
    try:
        SamplingFields.model_validate(given)
    except ValidationError as exc:
        raise from_validation(exc, prefix="parameters") from exc
    return Invocation(default_prompt() if prompt is None else prompt, as_image_list(images), given)


def default_prompt() -> str:
    """The packaged document prompt (what ``describe`` and ``convert`` ask by default)."""
    from pagescribe.prompts import load_prompt

    return load_prompt("document").text


class Transport(Protocol):
    """Carries invocations to a model. ``stream`` yields text pieces, then exactly one ``DescribeResult``."""

    def describe(self, call: Invocation) -> DescribeResult: ...

    def stream(self, call: Invocation) -> Iterator[str | DescribeResult]: ...

    def close(self) -> None: ...


class DescriptionStream(Iterator[str]):
    """The text of one answer, piece by piece as it is generated; ``result`` holds the whole answer after.

    Use it in a ``with`` block (or call ``close``) when you may stop early: that releases the connection,
    and the server stops generating.
    """

    def __init__(self, items: Iterator[str | DescribeResult]) -> None:
        self._items = items
        self._result: DescribeResult | None = None

    def __iter__(self) -> DescriptionStream:
        return self

    def __next__(self) -> str:
        if self._result is not None:
            raise StopIteration
        item = next(self._items)
        if isinstance(item, DescribeResult):
            self._result = item
            self.close()
            raise StopIteration
        return item

    @property
    def result(self) -> DescribeResult:
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


class Client:
    """Describe page images with a vision model: on a SageMaker endpoint, a pagescribe server, or in process.

    >>> with Client.for_endpoint("my-endpoint") as client:
    ...     print(client.describe("page.png", max_tokens=1024).text)
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @classmethod
    def for_endpoint(
        cls,
        name: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT,
        max_connections: int = 10,
    ) -> Client:
        """A SageMaker endpoint through boto3's ``sagemaker-runtime``.

        Region and credentials come from the usual AWS configuration (environment, ``~/.aws``, instance
        role) unless given; ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` or ``endpoint_url`` point it elsewhere
        (a local ``pagescribe serve``). botocore retries throttling and its own transient errors; the client
        adds retries for what botocore cannot see: the model container answering 429 or 503.
        """
        from pagescribe.client.sagemaker import SageMakerTransport

        return cls(
            SageMakerTransport(
                name,
                region=region,
                profile=profile,
                endpoint_url=endpoint_url,
                read_timeout_s=read_timeout_s,
                connect_timeout_s=connect_timeout_s,
                retry=retry or RetryPolicy(),
                payload_limit=payload_limit,
                max_connections=max_connections,
            )
        )

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT,
        headers: dict[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> Client:
        """A pagescribe server (``http://host:8080``, or its ``/invocations`` URL) over HTTP.

        ``http_client`` may be an ``httpx.Client`` of your own (proxies, TLS, tests); ``headers`` are sent
        with every request (for example an API key for a gateway in front of the server).
        """
        from pagescribe.client.http import HttpTransport

        return cls(
            HttpTransport(
                url,
                read_timeout_s=read_timeout_s,
                connect_timeout_s=connect_timeout_s,
                retry=retry or RetryPolicy(),
                payload_limit=payload_limit,
                headers=headers,
                http_client=http_client,
            )
        )

    @classmethod
    def in_process(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        mmproj: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        chat_template_file: Path | None = None,
        engine: Engine | None = None,
    ) -> Client:
        """The model loaded in this process (llama.cpp), as ``pagescribe describe`` runs it.

        ``model`` is found as ``describe --model`` finds it (a GGUF, a directory, a hub repo id, then
        ``$PAGESCRIBE_MODEL`` and ``/opt/ml/model``). Pass ``engine`` to use an engine you already loaded;
        the client then leaves closing it to you.
        """
        from pagescribe.client.local import LocalTransport

        if engine is not None:
            return cls(LocalTransport(engine, owned=False))
        from pagescribe.describe import load_engine

        loaded = load_engine(
            None if model is None else os.fspath(model),
            mmproj=mmproj,
            n_ctx=n_ctx,
            n_threads=n_threads,
            chat_template_file=chat_template_file,
        )
        return cls(LocalTransport(loaded, owned=True))

    def describe(
        self,
        image: ImageLike | Sequence[ImageLike],
        *,
        prompt: str | None = None,
        **parameters: Unpack[Parameters],
    ) -> DescribeResult:
        """Describe one image (a path, encoded bytes or a PIL image) or several, and return the answer.

        ``prompt`` defaults to the packaged document prompt. ``<ImageHere>`` in the prompt places the
        images (in order); without it they go before the text. Raises the server's own ``PagescribeError``
        subclasses (``ImageError``, ``InvalidRequest``, ``ServiceUnavailable``...).
        """
        return self.transport.describe(make_invocation(image, prompt, parameters))

    def stream(
        self,
        image: ImageLike | Sequence[ImageLike],
        *,
        prompt: str | None = None,
        **parameters: Unpack[Parameters],
    ) -> DescriptionStream:
        """Like ``describe``, but yields the text as it is generated; the stream's ``result`` has the rest."""
        return DescriptionStream(self.transport.stream(make_invocation(image, prompt, parameters)))

    def model_id(self) -> str | None:
        """The id of the model behind this client when the transport can tell (a server can; SageMaker can't)."""
        ask = getattr(self.transport, "model_id", None)
        return ask() if callable(ask) else None

    def close(self) -> None:
        """Release connections (and the model, when the client loaded it)."""
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
