"""A pagescribe server over HTTP (httpx): ``POST /invocations`` with format A, plain or streamed JSON lines.

Timeouts fit SageMaker-style serving: a short connect timeout, and a read timeout a little past the 60 s a
real-time request may take. Connection failures before the request reached the server, and 429/502/503
answers, are retried by the policy (``Retry-After`` honoured); a read timeout or a broken stream is not,
since the server may already be generating, and running a page twice is worse than reporting it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx

from pagescribe import __version__
from pagescribe.client import retry
from pagescribe.client.answers import LineDecoder, result_from_body
from pagescribe.client.errors import (
    RETRY_STATUSES,
    ClientConfigError,
    ResponseTimeout,
    Unreachable,
    parse_error,
    retry_after_s,
)
from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT, build_body
from pagescribe.client.retry import RetryPolicy, TryAgain
from pagescribe.client.transport import (
    CHECK_LIMITS,
    DEFAULT_CONCURRENCY,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    Item,
)
from pagescribe.types import GenerationRequest, GenerationResult

JSON = "application/json"
JSON_LINES = "application/jsonlines"
# Failures that happen before the server could have read the whole request: safe to send it again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError, httpx.WriteTimeout)


def invocations_url(url: str) -> str:
    """``/invocations`` of a server root, or the URL itself when it already names the route."""
    root = url.strip().rstrip("/")
    return root if root.endswith("/invocations") else f"{root}/invocations"


def timeout(*, read_timeout_s: float, connect_timeout_s: float) -> httpx.Timeout:
    return httpx.Timeout(read_timeout_s, connect=connect_timeout_s)


def headers(*, stream: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    accept = f"{JSON_LINES}, {JSON}" if stream else JSON
    return {"Content-Type": JSON, "Accept": accept, "User-Agent": f"pagescribe/{__version__}", **(extra or {})}


def transport_failure(exc: httpx.HTTPError, *, url: str) -> Exception:
    """What a failed exchange means: ``TryAgain`` when the request never reached the server."""
    # httpx has no class for "the server closed a kept-alive connection before answering" (the classic race
    # with an idle timeout); only its message tells it from a response cut off half-way, which is not retried.
    if isinstance(exc, _NOT_SENT) or (
        isinstance(exc, httpx.RemoteProtocolError) and "without sending" in str(exc).lower()
    ):
        return TryAgain(Unreachable(f"cannot reach {url}: {exc or type(exc).__name__}"))
    if isinstance(exc, httpx.ReadTimeout):
        return ResponseTimeout(f"{url} sent no answer within the read timeout ({exc or 'timed out'})")
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol):
        return Unreachable(f"the connection to {url} failed: {exc or type(exc).__name__}")
    return ClientConfigError(f"cannot send to {url}: {exc}")


def status_failure(response: httpx.Response, content: bytes, *, url: str) -> Exception:
    """The error an answer's status and body stand for, as ``TryAgain`` when the status invites a retry."""
    error = parse_error(response.status_code, content, headers=response.headers, source=url)
    if response.status_code in RETRY_STATUSES:
        return TryAgain(error, retry_after_s=retry_after_s(response.headers))
    return error


class HttpTransport:
    """Blocking transport over ``httpx.Client``."""

    image_limits = CHECK_LIMITS
    concurrency = DEFAULT_CONCURRENCY

    def __init__(
        self,
        url: str,
        *,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT,
        headers: dict[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.url = invocations_url(url)
        self.target = self.url.removesuffix("/invocations")
        self.retry = retry or RetryPolicy()
        self.payload_limit = payload_limit
        self._headers = headers
        self._owned = http_client is None
        self._client = http_client or httpx.Client(
            timeout=timeout(read_timeout_s=read_timeout_s, connect_timeout_s=connect_timeout_s)
        )

    def generate(self, request: GenerationRequest) -> GenerationResult:
        body = build_body(request, payload_limit=self.payload_limit)
        response = retry.call(lambda: self._send(body, stream=False), self.retry, what=f"POST {self.url}")
        return result_from_body(response.content, source=self.url)

    def stream(self, request: GenerationRequest) -> Iterator[Item]:
        body = build_body(request, payload_limit=self.payload_limit, stream=True)
        response = retry.call(lambda: self._send(body, stream=True), self.retry, what=f"POST {self.url}")
        return self._read(response)

    def model_id(self) -> str | None:
        """The model the server has loaded (``GET /v1/models``), or None when it does not say."""
        root = self.url.removesuffix("/invocations")
        try:
            response = self._client.get(f"{root}/v1/models", headers=headers(stream=False, extra=self._headers))
            return str(response.json()["data"][0]["id"]) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return None

    def _send(self, body: bytes, *, stream: bool) -> httpx.Response:
        request = self._client.build_request(
            "POST", self.url, content=body, headers=headers(stream=stream, extra=self._headers)
        )
        try:
            response = self._client.send(request, stream=stream)
            if response.is_error:
                content = response.read()
                response.close()
                raise status_failure(response, content, url=self.url)
        except httpx.HTTPError as exc:
            raise transport_failure(exc, url=self.url) from exc
        return response

    def _read(self, response: httpx.Response) -> Iterator[Item]:
        decoder = LineDecoder(source=self.url)
        try:
            for chunk in response.iter_bytes():
                yield from decoder.feed(chunk)
            yield from decoder.finish()
        except httpx.HTTPError as exc:
            failure = transport_failure(exc, url=self.url)
            raise (failure.error if isinstance(failure, TryAgain) else failure) from exc
        finally:
            response.close()

    def close(self) -> None:
        if self._owned:
            self._client.close()


class AsyncHttpTransport:
    """The same over ``httpx.AsyncClient``; images are encoded on a worker thread."""

    image_limits = CHECK_LIMITS

    def __init__(
        self,
        url: str,
        *,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT,
        headers: dict[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        max_connections: int = 10,
    ) -> None:
        self.url = invocations_url(url)
        self.retry = retry or RetryPolicy()
        self.payload_limit = payload_limit
        self._headers = headers
        self._owned = http_client is None
        self._client = http_client or httpx.AsyncClient(
            timeout=timeout(read_timeout_s=read_timeout_s, connect_timeout_s=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        body = await asyncio.to_thread(build_body, request, payload_limit=self.payload_limit)
        response = await retry.acall(lambda: self._send(body, stream=False), self.retry, what=f"POST {self.url}")
        return result_from_body(response.content, source=self.url)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Item]:
        body = await asyncio.to_thread(build_body, request, payload_limit=self.payload_limit, stream=True)
        response = await retry.acall(lambda: self._send(body, stream=True), self.retry, what=f"POST {self.url}")
        return self._read(response)

    async def _send(self, body: bytes, *, stream: bool) -> httpx.Response:
        request = self._client.build_request(
            "POST", self.url, content=body, headers=headers(stream=stream, extra=self._headers)
        )
        try:
            response = await self._client.send(request, stream=stream)
            if response.is_error:
                content = await response.aread()
                await response.aclose()
                raise status_failure(response, content, url=self.url)
        except httpx.HTTPError as exc:
            raise transport_failure(exc, url=self.url) from exc
        return response

    async def _read(self, response: httpx.Response) -> AsyncIterator[Item]:
        decoder = LineDecoder(source=self.url)
        try:
            async for chunk in response.aiter_bytes():
                for item in decoder.feed(chunk):
                    yield item
            for item in decoder.finish():
                yield item
        except httpx.HTTPError as exc:
            failure = transport_failure(exc, url=self.url)
            raise (failure.error if isinstance(failure, TryAgain) else failure) from exc
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
