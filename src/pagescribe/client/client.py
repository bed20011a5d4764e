"""``Client``: describe page images with a vision model on a SageMaker endpoint, a pagescribe server, or in process.

Every method returns the internal result type, ``GenerationResult``, whichever transport carried the request;
``generate`` and ``stream_request`` take a ``GenerationRequest`` as it is (what the document pipeline sends).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Unpack

import httpx

from pagescribe.client.async_endpoint import MAX_INVOCATION_TIMEOUT_S, AsyncEndpointTransport
from pagescribe.client.continuation import DEFAULT_MAX_CONTINUATIONS, Continuation
from pagescribe.client.http import HttpTransport
from pagescribe.client.local import LocalTransport
from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT
from pagescribe.client.retry import RetryPolicy
from pagescribe.client.sagemaker import SageMakerTransport
from pagescribe.client.transport import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    DescriptionStream,
    ImageLike,
    Item,
    Parameters,
    Transport,
    make_request,
)
from pagescribe.engine.base import Engine
from pagescribe.engine.factory import load_engine
from pagescribe.engine.options import EngineOptions
from pagescribe.types import GenerationRequest, GenerationResult


class Client:
    """Describe page images with a vision model: on a SageMaker endpoint, a pagescribe server, or in process.

    >>> with Client.for_endpoint("my-endpoint") as client:
    ...     print(client.describe("page.png", max_tokens=1024).text)

    An answer a time limit cuts (``finish_reason`` ``time_limit``: SageMaker's real-time budget, a server's
    ``--time-limit``) is continued with follow-up requests, up to ``max_continuations`` of them, and returned
    whole (``continuations`` says how many it took); set ``max_continuations = 0`` to get the cut answer as it is.
    """

    def __init__(self, transport: Transport, *, max_continuations: int = DEFAULT_MAX_CONTINUATIONS) -> None:
        self.transport = transport
        self.max_continuations = max_continuations

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
    def for_async_endpoint(
        cls,
        name: str,
        *,
        s3_prefix: str,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        invocation_timeout_s: int = MAX_INVOCATION_TIMEOUT_S,
        poll_s: float = 0.5,
    ) -> Client:
        """A SageMaker asynchronous endpoint: requests are stored under ``s3_prefix`` (``s3://bucket/prefix``),
        queued with ``InvokeEndpointAsync`` (up to ``invocation_timeout_s`` each, an hour at most) and their
        answers read back from S3. Answers come whole (``stream`` yields the text once it is there), and a request
        asked for before (by an earlier run) is waited for, not asked again. AWS configuration as for
        ``for_endpoint``; ``AWS_ENDPOINT_URL_S3`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` are honoured.
        """
        return cls(
            AsyncEndpointTransport(
                name, s3_prefix=s3_prefix, region=region, profile=profile, endpoint_url=endpoint_url,
                invocation_timeout_s=invocation_timeout_s, poll_s=poll_s,
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
        engine: Engine | None = None,
        options: EngineOptions | None = None,
        **settings: Any,
    ) -> Client:
        """The model loaded in this process (llama.cpp), as ``pagescribe describe`` runs it.

        ``model`` is found as ``describe --model`` finds it (a GGUF, a directory, a hub repo id; default
        ``$PAGESCRIBE_MODEL``, then ``/opt/ml/model``); ``settings`` are further ``EngineOptions`` fields (``mmproj``,
        ``ctx``, ``threads``, ``slots``, ...), or pass ``options`` whole. Pass ``engine`` to use an engine you already
        loaded; the client then leaves closing it to you.
        """
        if engine is not None:
            return cls(LocalTransport(engine, owned=False))
        return cls(LocalTransport(load_engine(engine_options(model, options, settings)), owned=True))

    def describe(
        self,
        image: ImageLike | Sequence[ImageLike],
        *,
        prompt: str | None = None,
        **parameters: Unpack[Parameters],
    ) -> GenerationResult:
        """Describe one image (a path, encoded bytes or a PIL image) or several, and return the answer.

        ``prompt`` defaults to the packaged document prompt. ``<ImageHere>`` in the prompt places the
        images (in order); without it they go before the text. Raises the server's own ``PagescribeError``
        subclasses (``ImageError``, ``InvalidRequest``, ``ServiceUnavailable``...).
        """
        return self.generate(self.request(image, prompt, parameters))

    def stream(
        self,
        image: ImageLike | Sequence[ImageLike],
        *,
        prompt: str | None = None,
        **parameters: Unpack[Parameters],
    ) -> DescriptionStream:
        """Like ``describe``, but yields the text as it is generated; the stream's ``result`` has the rest."""
        return self.stream_request(self.request(image, prompt, parameters))

    def request(
        self, image: ImageLike | Sequence[ImageLike], prompt: str | None, parameters: Parameters
    ) -> GenerationRequest:
        """The request ``describe`` would send (images decoded and checked as this transport needs them)."""
        return make_request(image, prompt, parameters, limits=self.transport.image_limits)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Answer a request built by the caller (several turns, images among the text, any sampling)."""
        answer = Continuation(request, self.max_continuations)
        follow_up: GenerationRequest | None = request
        while follow_up is not None:
            answer.add(self.transport.generate(follow_up))
            follow_up = answer.next_request()
        return answer.result() if len(answer.results) > 1 else answer.results[0]

    def stream_request(self, request: GenerationRequest) -> DescriptionStream:
        """Like ``generate``, but yields the text as it is generated (continuations too)."""
        # The first request is sent now, so a refused one fails here rather than at the first read.
        return DescriptionStream(self._pieces(request, self.transport.stream(request)))

    def _pieces(self, request: GenerationRequest, first: Iterator[Item]) -> Iterator[Item]:
        answer = Continuation(request, self.max_continuations)
        items: Iterator[Item] | None = first
        try:
            while items is not None:
                for item in items:
                    if isinstance(item, GenerationResult):
                        answer.add(item)
                    else:
                        yield item
                follow_up = answer.next_request()
                items = None if follow_up is None else self.transport.stream(follow_up)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        yield answer.result() if len(answer.results) > 1 else answer.results[0]

    @property
    def concurrency(self) -> int:
        """How many requests to keep in flight to keep the model behind this client busy."""
        return self.transport.concurrency

    @property
    def target(self) -> str:
        """Where this client sends requests: a server's URL, ``sagemaker:NAME`` or ``local:MODEL``."""
        return self.transport.target

    def model_id(self) -> str | None:
        """The id of the model behind this client when the transport can tell (a server can; SageMaker can't)."""
        return self.transport.model_id()

    def close(self) -> None:
        """Release connections (and the model, when the client loaded it)."""
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def engine_options(
    model: str | os.PathLike[str] | None, options: EngineOptions | None, settings: dict[str, Any]
) -> EngineOptions:
    """``options`` (default: from the environment) with ``model`` and ``settings`` on top, validated."""
    given = {**settings, **({"model": os.fspath(model)} if model is not None else {})}
    base = options or EngineOptions()
    return EngineOptions(**{**base.model_dump(), **given}) if given else base
