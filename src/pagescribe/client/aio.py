"""``AsyncClient``: the same interface for asyncio code and batch work.

HTTP runs natively on ``httpx.AsyncClient``; boto3 and the in-process engine are blocking, so their
transports run on a thread pool of their own (sized to the connections or engine slots, so a big batch
queues in the event loop instead of piling up threads). ``describe_many`` keeps a fixed number of pages in
flight and returns every page's result or error, in order.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Unpack

from pagescribe.client.base import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    Client,
    DescribeResult,
    Invocation,
    Parameters,
    Transport,
    make_invocation,
)
from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT, ImageLike
from pagescribe.client.retry import RetryPolicy
from pagescribe.errors import PagescribeError

if TYPE_CHECKING:
    import httpx

    from pagescribe.engine.base import Engine

T = TypeVar("T")
_END = object()


class AsyncTransport(Protocol):
    """``Transport`` for asyncio: ``stream`` resolves once the answer has begun."""

    async def describe(self, call: Invocation) -> DescribeResult: ...

    async def stream(self, call: Invocation) -> AsyncIterator[str | DescribeResult]: ...

    async def aclose(self) -> None: ...


class ThreadedTransport:
    """A blocking ``Transport`` run on its own worker threads."""

    def __init__(self, transport: Transport, *, max_workers: int) -> None:
        self.transport = transport
        self._pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="pagescribe-client")

    async def _run(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def describe(self, call: Invocation) -> DescribeResult:
        result: DescribeResult = await self._run(self.transport.describe, call)
        return result

    async def stream(self, call: Invocation) -> AsyncIterator[str | DescribeResult]:
        items: Iterator[str | DescribeResult] = await self._run(self.transport.stream, call)
        return self._iterate(items)

    async def _iterate(self, items: Iterator[str | DescribeResult]) -> AsyncIterator[str | DescribeResult]:
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


class AsyncDescriptionStream:
    """The text of one answer as it is generated (``async for``); ``result`` holds the whole answer after."""

    def __init__(self, items: AsyncIterator[str | DescribeResult]) -> None:
        self._items = items
        self._result: DescribeResult | None = None

    def __aiter__(self) -> AsyncDescriptionStream:
        return self

    async def __anext__(self) -> str:
        if self._result is not None:
            raise StopAsyncIteration
        item = await anext(self._items)
        if isinstance(item, DescribeResult):
            self._result = item
            await self.aclose()
            raise StopAsyncIteration
        return item

    @property
    def result(self) -> DescribeResult:
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


class AsyncClient:
    """``Client`` for asyncio. Constructors and options are the same; methods are coroutines.

    >>> async with AsyncClient.for_url("http://127.0.0.1:8080") as client:
    ...     results = await client.describe_many(["p1.png", "p2.png"], concurrency=4)
    """

    def __init__(self, transport: AsyncTransport) -> None:
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
        from pagescribe.client.http import AsyncHttpTransport

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
        mmproj: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        chat_template_file: Path | None = None,
        engine: Engine | None = None,
    ) -> AsyncClient:
        """The model in this process (loaded now, blocking); see ``Client.in_process``."""
        sync = Client.in_process(
            model, mmproj=mmproj, n_ctx=n_ctx, n_threads=n_threads, chat_template_file=chat_template_file, engine=engine
        )
        slots = getattr(getattr(sync.transport, "engine", None), "slots", 1)
        return cls(ThreadedTransport(sync.transport, max_workers=slots))

    async def describe(
        self, image: ImageLike | Sequence[ImageLike], *, prompt: str | None = None, **parameters: Unpack[Parameters]
    ) -> DescribeResult:
        """Describe one image or several; see ``Client.describe``."""
        return await self.transport.describe(make_invocation(image, prompt, parameters))

    async def stream(
        self, image: ImageLike | Sequence[ImageLike], *, prompt: str | None = None, **parameters: Unpack[Parameters]
    ) -> AsyncDescriptionStream:
        """Start an answer and return its text stream once it has begun; see ``Client.stream``."""
        return AsyncDescriptionStream(await self.transport.stream(make_invocation(image, prompt, parameters)))

    async def describe_many(
        self,
        images: Iterable[ImageLike | Sequence[ImageLike]],
        *,
        prompt: str | None = None,
        concurrency: int = 4,
        **parameters: Unpack[Parameters],
    ) -> list[DescribeResult | PagescribeError]:
        """Describe each item (one image, or a sequence for one request), ``concurrency`` at a time.

        Returns, in input order, each result or the ``PagescribeError`` that item got: one bad page does not
        sink the batch. Any other exception (a bug) is raised.
        """
        calls = [make_invocation(item, prompt, parameters) for item in images]
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(call: Invocation) -> DescribeResult | PagescribeError:
            async with gate:
                try:
                    return await self.transport.describe(call)
                except PagescribeError as exc:
                    return exc

        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def aclose(self) -> None:
        """Release connections, threads (and the model, when the client loaded it)."""
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
