"""``AsyncClient``: the same interface for asyncio code and batch work.

HTTP runs natively on ``httpx.AsyncClient``, and the in-process engine posts its events to the caller's loop;
boto3 is blocking, so its transport runs on a thread pool of its own (one thread per connection).
``describe_many`` keeps a fixed number of pages in flight and returns every page's result or error, in order.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Unpack

import httpx

from pagescribe.client.client import Client, engine_options
from pagescribe.client.continuation import DEFAULT_MAX_CONTINUATIONS, Continuation
from pagescribe.client.http import AsyncHttpTransport
from pagescribe.client.local import AsyncLocalTransport
from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT
from pagescribe.client.retry import RetryPolicy
from pagescribe.client.transport import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    AsyncDescriptionStream,
    AsyncTransport,
    ImageLike,
    Item,
    Parameters,
    Transport,
    make_request,
)
from pagescribe.engine.base import Engine
from pagescribe.engine.factory import load_engine
from pagescribe.engine.options import EngineOptions
from pagescribe.errors import PagescribeError
from pagescribe.types import GenerationRequest, GenerationResult

_END = object()


class ThreadedTransport:
    """A blocking ``Transport`` run on its own worker threads."""

    def __init__(self, transport: Transport, *, max_workers: int) -> None:
        self.transport = transport
        self.image_limits = transport.image_limits
        self._pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="pagescribe-client")

    async def _run(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        result: GenerationResult = await self._run(self.transport.generate, request)
        return result

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Item]:
        items: Iterator[Item] = await self._run(self.transport.stream, request)
        return self._iterate(items)

    async def _iterate(self, items: Iterator[Item]) -> AsyncIterator[Item]:
        try:
            while (item := await self._run(next, items, _END)) is not _END:
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                await self._run(close)

    async def aclose(self) -> None:
        await self._run(self.transport.close)
        self._pool.shutdown(wait=False)


class AsyncClient:
    """``Client`` for asyncio. Constructors and options are the same; methods are coroutines.

    >>> async with AsyncClient.for_url("http://127.0.0.1:8080") as client:
    ...     results = await client.describe_many(["p1.png", "p2.png"], concurrency=4)
    """

    def __init__(self, transport: AsyncTransport, *, max_continuations: int = DEFAULT_MAX_CONTINUATIONS) -> None:
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
    ) -> AsyncClient:
        """A SageMaker endpoint (boto3 on ``max_connections`` threads); see ``Client.for_endpoint``."""
        sync = Client.for_endpoint(
            name,
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            read_timeout_s=read_timeout_s,
            connect_timeout_s=connect_timeout_s,
            retry=retry,
            payload_limit=payload_limit,
            max_connections=max_connections,
        )
        return cls(ThreadedTransport(sync.transport, max_workers=max_connections))

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
        http_client: httpx.AsyncClient | None = None,
        max_connections: int = 10,
    ) -> AsyncClient:
        """A pagescribe server over ``httpx.AsyncClient``; see ``Client.for_url``."""
        return cls(
            AsyncHttpTransport(
                url,
                read_timeout_s=read_timeout_s,
                connect_timeout_s=connect_timeout_s,
                retry=retry,
                payload_limit=payload_limit,
                headers=headers,
                http_client=http_client,
                max_connections=max_connections,
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
    ) -> AsyncClient:
        """The model in this process (loaded now, blocking); see ``Client.in_process``."""
        if engine is not None:
            return cls(AsyncLocalTransport(engine, owned=False))
        return cls(AsyncLocalTransport(load_engine(engine_options(model, options, settings)), owned=True))

    async def describe(
        self, image: ImageLike | Sequence[ImageLike], *, prompt: str | None = None, **parameters: Unpack[Parameters]
    ) -> GenerationResult:
        """Describe one image or several; see ``Client.describe``."""
        return await self.generate(self.request(image, prompt, parameters))

    async def stream(
        self, image: ImageLike | Sequence[ImageLike], *, prompt: str | None = None, **parameters: Unpack[Parameters]
    ) -> AsyncDescriptionStream:
        """Start an answer and return its text stream once it has begun; see ``Client.stream``."""
        request = self.request(image, prompt, parameters)
        return AsyncDescriptionStream(self._pieces(request, await self.transport.stream(request)))

    def request(
        self, image: ImageLike | Sequence[ImageLike], prompt: str | None, parameters: Parameters
    ) -> GenerationRequest:
        """The request ``describe`` would send; see ``Client.request``."""
        return make_request(image, prompt, parameters, limits=self.transport.image_limits)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Answer a request built by the caller, continuing it past time limits; see ``Client.generate``."""
        answer = Continuation(request, self.max_continuations)
        follow_up: GenerationRequest | None = request
        while follow_up is not None:
            answer.add(await self.transport.generate(follow_up))
            follow_up = answer.next_request()
        return answer.result() if len(answer.results) > 1 else answer.results[0]

    async def _pieces(self, request: GenerationRequest, first: AsyncIterator[Item]) -> AsyncIterator[Item]:
        answer = Continuation(request, self.max_continuations)
        items: AsyncIterator[Item] | None = first
        try:
            while items is not None:
                async for item in items:
                    if isinstance(item, GenerationResult):
                        answer.add(item)
                    else:
                        yield item
                follow_up = answer.next_request()
                items = None if follow_up is None else await self.transport.stream(follow_up)
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
        yield answer.result() if len(answer.results) > 1 else answer.results[0]

    async def describe_many(
        self,
        images: Iterable[ImageLike | Sequence[ImageLike]],
        *,
        prompt: str | None = None,
        concurrency: int = 4,
        **parameters: Unpack[Parameters],
    ) -> list[GenerationResult | PagescribeError]:
        """Describe each item (one image, or a sequence for one request), ``concurrency`` at a time.

        Returns, in input order, each result or the ``PagescribeError`` that item got: one bad page does not
        sink the batch. Any other exception (a bug) is raised.
        """
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(item: ImageLike | Sequence[ImageLike]) -> GenerationResult | PagescribeError:
            async with gate:
                try:  # images are read and decoded in turn, not all at once
                    return await self.generate(self.request(item, prompt, parameters))
                except PagescribeError as exc:
                    return exc

        return list(await asyncio.gather(*(one(item) for item in images)))

    async def aclose(self) -> None:
        """Release connections, threads (and the model, when the client loaded it)."""
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
