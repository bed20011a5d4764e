"""JSON Lines batches (SageMaker batch transform): one output line per record, in order, errors included.

Every record goes to the engine's queue at once; a record that meets a full queue waits for room rather than
becoming an "overloaded" error line: once the batch is accepted, every record is answered. A record's time budget
starts when it enters the queue, not when the batch arrived.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence

from pagescribe.engine.sinks import AsyncEvents
from pagescribe.errors import InvalidRequest, NotReady, Overloaded, PagescribeError
from pagescribe.server import invoke, streams
from pagescribe.types import GenerationRequest
from pagescribe.wire.dispatch import parse_invocation, parse_json
from pagescribe.wire.errors import error_body
from pagescribe.wire.jsonlines import MEDIA_TYPE, encode_line, split_records

log = logging.getLogger("pagescribe.server")


async def answer(call: invoke.Call, body: bytes) -> invoke.Answer:
    """Start every record and stream their lines back in input order."""
    records = split_records(body)
    if not records:
        raise InvalidRequest("the JSON Lines body holds no records", param="body")
    if call.runtime.state != "ready":
        # Refuse the whole batch rather than answer every line with the same error.
        raise NotReady(call.runtime.reason, retry_after_s=10.0)
    call.log["records"] = len(records)
    tasks = [asyncio.ensure_future(_record(call, raw, n)) for n, raw in enumerate(records)]
    return invoke.Answer(MEDIA_TYPE, chunks=_in_order(tasks))


async def _record(call: invoke.Call, raw: bytes, n: int) -> bytes:
    try:
        wire = parse_invocation(parse_json(raw))
        requests = await invoke.translate(call, wire, request_id=f"{call.request_id}-r{n}")
        jobs = await _submit_when_there_is_room(call, requests)
        done = await invoke.results(jobs)
    except PagescribeError as exc:
        return encode_line(error_body(exc))
    except Exception as exc:
        log.exception("batch record failed", extra={"record": n})
        return encode_line(error_body(exc))
    call.note(done)
    return encode_line(invoke.complete(call, wire, done))


async def _submit_when_there_is_room(call: invoke.Call, requests: list[GenerationRequest]) -> list[AsyncEvents]:
    """Queue a record's requests, waiting while the queue is full.

    The batch was accepted (its 200 may already be on the wire), so a record refused for a full queue would
    be lost: batch transform does not retry one line of a successful answer. It waits for room instead; a
    client that leaves cancels the wait with the rest of the batch.
    """
    while True:
        now = time.monotonic()
        try:
            return call.runtime.submit([dataclasses.replace(r, arrived=now) for r in requests], pieces=False)
        except Overloaded as exc:
            await asyncio.sleep(random.uniform(0.05, min(0.5, exc.retry_after_s)))


async def _in_order(tasks: Sequence[asyncio.Future[bytes]]) -> AsyncIterator[streams.Chunk]:
    try:
        for task in tasks:
            yield await task
    finally:
        for task in tasks:
            task.cancel()
