"""Streamed answers: format A as JSON lines, formats B and C as server-sent events (OpenAI's chunks, TGI's tokens).

A stream yields bytes, or one ``StreamFailure`` if something breaks after the answer began: plain HTTP
writes the failure's ``line`` (an error record in the stream's own format), the AWS event stream turns it
into a ``ModelStreamError`` event. When the consumer stops early (the client left), every job of the request
is cancelled so its slot frees at once. An event stream left silent (its page still waiting for the engine) is
sent a comment line every so often, as llama-server does, so a client's read timeout does not drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pagescribe.engine.sinks import AsyncEvents, Item
from pagescribe.errors import PagescribeError
from pagescribe.types import GenerationResult
from pagescribe.wire import openai, sagemaker, tgi
from pagescribe.wire.errors import error_body, kind_of
from pagescribe.wire.jsonlines import encode_line

log = logging.getLogger("pagescribe.server")

SSE = "text/event-stream"
PING = b":\n\n"  # an SSE comment: every event-stream reader skips it
Note = Callable[[Sequence[GenerationResult]], None]


@dataclass(frozen=True)
class StreamFailure:
    """An error after a stream began: ``line`` is how this stream's format writes it, ``error`` the cause."""

    error: BaseException
    line: bytes


Chunk = bytes | StreamFailure


async def dialog_lines(jobs: Sequence[AsyncEvents], first: AsyncIterator[Item], *, note: Note) -> AsyncIterator[Chunk]:
    """``{"token": {"text"}, "index"}`` lines, then each dialog's answer line; dialogs in order."""
    try:
        for index, job in enumerate(jobs):
            async for item in first if index == 0 else job.events():
                if isinstance(item, GenerationResult):
                    note([item])
                    yield encode_line(sagemaker.final_line(item, index=index))
                else:
                    yield encode_line(sagemaker.token_line(item, index=index))
    except Exception as exc:
        yield failure(exc, encode_line(error_body(exc)))
    finally:
        for job in jobs:
            job.cancel.cancel()


async def chat_events(
    job: AsyncEvents,
    items: AsyncIterator[Item],
    *,
    note: Note,
    model: str,
    include_usage: bool,
    completion_id: str,
    created: int,
) -> AsyncIterator[Chunk]:
    """OpenAI ``chat.completion.chunk`` events, ending with ``data: [DONE]``."""

    def event(delta: dict[str, str], *, finish: str | None = None, logprobs: dict[str, Any] | None = None) -> bytes:
        chunk = openai.chunk(
            completion_id=completion_id, created=created, model=model, delta=delta, finish=finish, logprobs=logprobs
        )
        return sse(chunk)

    try:
        yield event({"role": "assistant", "content": ""})
        async for item in items:
            if isinstance(item, GenerationResult):
                note([item])
                yield event({}, finish=openai.finish_reason(item), logprobs=openai.choice_logprobs(item))
                if include_usage:
                    yield sse(openai.usage_chunk(item, completion_id=completion_id, created=created))
            else:
                yield event({"content": item})
        yield b"data: [DONE]\n\n"
    except Exception as exc:
        yield failure(exc, sse(error_body(exc, openai=True)))
    finally:
        job.cancel.cancel()


async def tgi_events(
    job: AsyncEvents, items: AsyncIterator[Item], *, note: Note, body: tgi.TgiRequest
) -> AsyncIterator[Chunk]:
    """TGI's ``data:{"token": ...}`` events, the last with ``generated_text`` (and ``details`` when asked)."""
    try:
        async for item in items:
            if isinstance(item, GenerationResult):
                note([item])
                yield tgi.final_event(item, body)
            else:
                yield tgi.token_event(item)
    except Exception as exc:
        yield failure(exc, sse(error_body(exc)))
    finally:
        job.cancel.cancel()


async def pinged(chunks: AsyncIterator[Chunk], every_s: float) -> AsyncIterator[Chunk]:
    """``chunks``, with ``PING`` whenever ``every_s`` seconds pass without one (``every_s`` 0: unchanged)."""
    if every_s <= 0:
        async for chunk in chunks:
            yield chunk
        return
    source = aiter(chunks)
    pending: asyncio.Future[Chunk] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=every_s)
            if not done:
                yield PING
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield chunk
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def failure(exc: Exception, line: bytes) -> StreamFailure:
    """Wrap a mid-stream error, logging it when it is ours (5xx) rather than the caller's."""
    if not isinstance(exc, PagescribeError):
        log.error("stream failed", exc_info=exc)
    elif kind_of(exc).status >= 500:
        log.error("stream failed", extra={"error": exc.message})
    return StreamFailure(exc, line)


async def plain(chunks: AsyncIterator[Chunk]) -> AsyncIterator[bytes]:
    """The stream as HTTP body bytes: a failure is written as its error line."""
    async for chunk in chunks:
        yield chunk.line if isinstance(chunk, StreamFailure) else chunk
