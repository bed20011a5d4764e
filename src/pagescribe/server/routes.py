"""The HTTP routes. Each one reads the request, calls ``invoke``/``batch`` and frames the answer.

``/invocations`` and ``/v1/chat/completions`` answer plainly; the SageMaker runtime paths
(``/endpoints/{name}/...``) answer as the real SageMaker runtime would, so unmodified boto3 works: a complete
body for ``InvokeEndpoint``, an AWS event stream for ``InvokeEndpointWithResponseStream``, and container
errors wrapped as ``ModelError`` (424, with ``OriginalStatusCode``/``OriginalMessage``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from pagescribe.errors import PagescribeError
from pagescribe.server import batch, invoke, streams
from pagescribe.server.bodies import body_kind, read_body
from pagescribe.server.metrics import CONTENT_TYPE, Metrics
from pagescribe.server.middleware import LOG_FIELDS, REQUEST_ID
from pagescribe.server.runtime import Runtime
from pagescribe.server.settings import MiB, ServerSettings
from pagescribe.wire import eventstream, openai
from pagescribe.wire.dispatch import parse_chat, parse_invocation, parse_json
from pagescribe.wire.errors import error_body, error_headers, kind_of
from pagescribe.wire.openai import ChatCompletionRequest
from pagescribe.wire.sagemaker import DialogBatchRequest
from pagescribe.wire.tgi import TgiRequest

log = logging.getLogger("pagescribe.server")

_FORMATS = {DialogBatchRequest: "dialog", ChatCompletionRequest: "chat", TgiRequest: "tgi"}
CLIENT_CLOSED = 499  # nginx's "client closed request": logged, never seen by anyone
_VARIANT = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}


@dataclass
class Services:
    """What the routes share, kept on ``app.state.services`` (never in module globals)."""

    settings: ServerSettings
    runtime: Runtime
    metrics: Metrics
    openapi: dict[str, Any]


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def ping(request: Request) -> Response:
    """200 once the model is loaded and serving; 503 with the reason while loading or broken."""
    status, body = services(request).runtime.health()
    return JSONResponse(body, status_code=status, headers={"Retry-After": "5"} if status != 200 else None)


async def execution_parameters(request: Request) -> Response:
    """What SageMaker batch transform should send: one record per slot at a time, JSON Lines batches."""
    svc = services(request)
    return JSONResponse(
        {
            "MaxConcurrentTransforms": svc.runtime.engine.slots,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": max(1, min(100, svc.settings.max_body_bytes // MiB)),
        }
    )


async def models(request: Request) -> Response:
    """The loaded model, OpenAI-style."""
    runtime = services(request).runtime
    return JSONResponse(openai.model_list(runtime.engine.model_id, created=runtime.started_at))


async def model(request: Request) -> Response:
    """``GET /v1/models/{id}``: the loaded model, or 404 for any other id (what ``openai.models.retrieve`` reads)."""
    runtime = services(request).runtime
    wanted = request.path_params["model_id"]
    if wanted != runtime.engine.model_id:
        raise HTTPException(404, f"no model {wanted!r}: this server serves {runtime.engine.model_id!r}")
    return JSONResponse(openai.model_object(wanted, created=runtime.started_at))


async def metrics(request: Request) -> Response:
    return Response(services(request).metrics.render(), media_type=CONTENT_TYPE)


async def openapi_document(request: Request) -> Response:
    return JSONResponse(services(request).openapi)


async def invocations(request: Request) -> Response:
    """SageMaker's ``/invocations``: dialog batch, OpenAI chat or JSON Lines, by content type and shape."""
    try:
        return _http(await _answer(request, chat_only=False))
    except invoke.ClientGone:
        return Response(status_code=CLIENT_CLOSED)


async def chat_completions(request: Request) -> Response:
    """OpenAI ``/v1/chat/completions``: JSON, or server-sent events with ``stream: true``."""
    try:
        return _http(await _answer(request, chat_only=True))
    except invoke.ClientGone:
        return Response(status_code=CLIENT_CLOSED)


async def runtime_invoke(request: Request) -> Response:
    """``POST /endpoints/{name}/invocations``, the path boto3's ``invoke_endpoint`` calls."""
    try:
        answer = await _answer(request, chat_only=False)
    except invoke.ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    except Exception as exc:
        return _model_error(request, exc)
    response = _http(answer)
    response.headers.update(_VARIANT)
    return response


async def runtime_stream(request: Request) -> Response:
    """``POST /endpoints/{name}/invocations-response-stream``: the answer as AWS event-stream frames."""
    try:
        answer = await _answer(request, chat_only=False)
    except invoke.ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    except Exception as exc:
        return _model_error(request, exc)
    headers = {"X-Amzn-SageMaker-Content-Type": answer.media_type, **_VARIANT}
    return StreamingResponse(_frames(answer), media_type=eventstream.MEDIA_TYPE, headers=headers)


async def _answer(request: Request, *, chat_only: bool) -> invoke.Answer:
    svc = services(request)
    call = invoke.Call(
        request,
        svc.runtime,
        svc.settings,
        request_id=request.scope[REQUEST_ID],
        log=request.scope[LOG_FIELDS],
    )
    kind = body_kind(request, allow_jsonlines=not chat_only)
    body = await read_body(request, limit=svc.settings.max_body_bytes)
    if kind == "jsonlines":
        call.log["format"] = "jsonlines"
        return await batch.answer(call, body)
    data = parse_json(body)
    wire = parse_chat(data) if chat_only else parse_invocation(data)
    call.log["format"] = _FORMATS[type(wire)]
    return await invoke.answer(call, wire)


def _http(answer: invoke.Answer) -> Response:
    if answer.chunks is None:
        return JSONResponse(answer.body, media_type=answer.media_type)
    return StreamingResponse(streams.plain(answer.chunks), media_type=answer.media_type)


async def _frames(answer: invoke.Answer) -> AsyncIterator[bytes]:
    if answer.chunks is None:
        for frame in eventstream.payload_parts(_json_bytes(answer.body)):
            yield frame
        return
    async for chunk in answer.chunks:
        if isinstance(chunk, streams.StreamFailure):
            message = json.dumps(error_body(chunk.error))
            yield eventstream.model_stream_error(message, error_code=kind_of(chunk.error).type)
            return
        for frame in eventstream.payload_parts(chunk):
            yield frame


def report(exc: BaseException, fields: dict[str, Any]) -> None:
    """Log a refused or failed request: the caller's mistakes at info, ours at error with the details."""
    kind = kind_of(exc)
    fields["error"] = kind.type
    if not isinstance(exc, PagescribeError):
        log.error("internal error", exc_info=exc)
    elif kind.status >= 500 and kind.status != 503:
        log.error("request failed", extra={"error": kind.type, "detail": exc.message})
    else:
        log.info("request refused", extra={"error": kind.type, "detail": exc.message, "param": exc.param})


def error_response(request: Request, exc: Exception) -> Response:
    """The JSON error for ``exc`` (OpenAI's envelope on ``/v1``), with ``Retry-After`` where it applies."""
    report(exc, request.scope.get(LOG_FIELDS, {}))
    openai_route = request.url.path.startswith("/v1/")
    return JSONResponse(
        error_body(exc, openai=openai_route), status_code=kind_of(exc).status, headers=error_headers(exc)
    )


def _model_error(request: Request, exc: Exception) -> Response:
    """A container error as the SageMaker runtime reports it: 424 ``ModelError`` wrapping the original."""
    report(exc, request.scope.get(LOG_FIELDS, {}))
    status = kind_of(exc).status
    original = json.dumps(error_body(exc))
    side = "client" if status < 500 else "server"
    body = {
        "Message": f'Received {side} error ({status}) from primary with message "{original}".',
        "OriginalStatusCode": status,
        "OriginalMessage": original,
        "LogStreamArn": "",
    }
    return JSONResponse(body, status_code=424, headers={"x-amzn-ErrorType": "ModelError"})


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
