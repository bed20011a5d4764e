"""Answering requests: wire model -> GenerationRequests -> the engine's queue -> answer, for every route alike.

Routes differ only in how an answer is framed (plain HTTP, SageMaker runtime JSON, AWS event stream); the
work here returns an ``Answer`` (a complete JSON value, or a stream of chunks) and leaves framing to them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import Request

from pagescribe.engine.sinks import AsyncEvents, Item
from pagescribe.server import streams
from pagescribe.server.runtime import Runtime
from pagescribe.server.settings import ServerSettings
from pagescribe.types import GenerationRequest, GenerationResult
from pagescribe.wire import openai, sagemaker, tgi
from pagescribe.wire.dispatch import WireRequest, to_requests
from pagescribe.wire.jsonlines import MEDIA_TYPE as JSONLINES

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready; its generations have been cancelled."""


@dataclass
class Answer:
    """What a request produced: a JSON value (``body``) or a stream of chunks, with its media type."""

    media_type: str
    body: Any = None
    chunks: AsyncIterator[streams.Chunk] | None = None


@dataclass
class Call:
    """One HTTP request being answered: where it came from and what the access log should say about it."""

    request: Request
    runtime: Runtime
    settings: ServerSettings
    request_id: str
    arrived: float = field(default_factory=time.monotonic)
    log: dict[str, Any] = field(default_factory=dict)

    def note(self, results: Sequence[GenerationResult]) -> None:
        """Add tokens, timings and finish reasons to the access-log fields."""
        self.log["prompt_tokens"] = self.log.get("prompt_tokens", 0) + sum(r.usage.prompt_tokens for r in results)
        self.log["completion_tokens"] = self.log.get("completion_tokens", 0) + sum(
            r.usage.completion_tokens for r in results
        )
        self.log.setdefault("finish_reasons", []).extend(r.finish_reason for r in results)
        for key in ("image_encode_ms", "prompt_ms", "generate_ms"):
            total = sum(r.timings.as_dict()[key] for r in results)
            self.log[key] = round(self.log.get(key, 0.0) + total, 3)


async def translate(call: Call, wire: WireRequest, *, request_id: str | None = None) -> list[GenerationRequest]:
    """Decode images and build requests on a worker thread: Pillow must not stall the event loop.

    Each request's time budget (its own, else the server's default) counts from the call's arrival, so queueing
    spends it too; the engine holds the request to that deadline.
    """
    convert = functools.partial(
        to_requests, wire, policy=call.settings.media_policy, request_id=request_id or call.request_id
    )
    built = await anyio.to_thread.run_sync(convert, limiter=call.runtime.decode_limiter)
    limit = call.settings.time_limit_s
    requests = [
        dataclasses.replace(r, time_limit_s=r.time_limit_s or limit, arrived=call.arrived) for r in built
    ]
    call.log["dialogs"] = call.log.get("dialogs", 0) + len(requests)
    call.log["images"] = call.log.get("images", 0) + sum(len(r.images) for r in requests)
    if call.settings.debug:
        call.log["prompt"] = [m.text for r in requests for m in r.messages]
    return requests


async def until_disconnect(call: Call, work: Awaitable[T], jobs: Sequence[AsyncEvents]) -> T:
    """Await ``work``; if the client disconnects first, cancel ``jobs`` (their slots free at once)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(call.request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    cancel_all(jobs)
    raise ClientGone


async def _disconnect(request: Request) -> None:
    # The body has been read, so the next message can only be the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


def cancel_all(jobs: Sequence[AsyncEvents]) -> None:
    for job in jobs:
        job.cancel.cancel()


async def results(jobs: Sequence[AsyncEvents]) -> list[GenerationResult]:
    """Every job's result, in order; if one fails the others are cancelled, not left running."""
    try:
        return list(await asyncio.gather(*(job.result() for job in jobs)))
    except BaseException:
        cancel_all(jobs)
        raise


async def answer(call: Call, wire: WireRequest) -> Answer:
    """Answer one format A or B request, streamed or not."""
    requests = await translate(call, wire)
    jobs = call.runtime.submit(requests, pieces=wire.stream)
    call.log["stream"] = wire.stream
    if wire.stream:
        return await _streamed(call, wire, jobs)
    done = await until_disconnect(call, results(jobs), jobs)
    call.note(done)
    return Answer("application/json", body=complete(call, wire, done))


def complete(call: Call, wire: WireRequest, done: Sequence[GenerationResult]) -> Any:
    """The non-streamed answer body: format A's list, TGI's list, or a ``chat.completion``."""
    if isinstance(wire, sagemaker.DialogBatchRequest):
        return [sagemaker.answer(r) for r in done]
    if isinstance(wire, tgi.TgiRequest):
        return [tgi.answer(done[0], wire)]
    return openai.completion(done[0], **_chat_ids(call))


async def _streamed(call: Call, wire: WireRequest, jobs: list[AsyncEvents]) -> Answer:
    # Wait for the first piece before answering, so errors that come before any text (context overflow,
    # a bad response_format) still get their own status instead of a 200 with an error inside. An event stream
    # waits at most ``stream_ping_s``: a page queued behind others can take minutes to reach its first token on
    # CPU, and a client that hears nothing for that long gives up (llama-server starts its answer and pings too).
    events = jobs[0].events()
    first = asyncio.ensure_future(anext(events))
    # JSON Lines (format A) have no comment line to ping with: they wait for the first piece
    ping_s = 0.0 if isinstance(wire, sagemaker.DialogBatchRequest) else call.settings.stream_ping_s
    try:
        await until_disconnect(call, asyncio.wait({first}, timeout=ping_s or None), jobs)
        if first.done():
            first.result()
    except BaseException:
        first.cancel()
        cancel_all(jobs)
        raise
    items = _rejoin(first, events)
    if isinstance(wire, sagemaker.DialogBatchRequest):
        return Answer(JSONLINES, chunks=streams.dialog_lines(jobs, items, note=call.note))
    if isinstance(wire, tgi.TgiRequest):
        chunks = streams.tgi_events(jobs[0], items, note=call.note, body=wire)
    else:
        include_usage = wire.stream_options is not None and wire.stream_options.include_usage
        chunks = streams.chat_events(
            jobs[0],
            items,
            note=call.note,
            model=call.runtime.engine.model_id,
            include_usage=include_usage,
            **_chat_ids(call),
        )
    return Answer(streams.SSE, chunks=streams.pinged(chunks, ping_s))


async def _rejoin(first: Awaitable[Item], rest: AsyncIterator[Item]) -> AsyncIterator[Item]:
    yield await first
    async for item in rest:
        yield item


def _chat_ids(call: Call) -> dict[str, Any]:
    return {"completion_id": f"chatcmpl-{call.request_id}", "created": int(time.time())}
