"""Per-request bookkeeping: request id, access log line, request metrics, and the last-resort 500.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so streamed answers pass through untouched and the log
line is written when the last byte has gone out, with the tokens and timings the handler noted.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pagescribe.server.logging import request_id_var
from pagescribe.server.metrics import Metrics
from pagescribe.wire.errors import error_body

log = logging.getLogger("pagescribe.access")
errors = logging.getLogger("pagescribe.server")

#: Scope keys handlers use: the request id, and a dict of fields for the access-log line.
REQUEST_ID = "pagescribe.request_id"
LOG_FIELDS = "pagescribe.log"
_SAFE_ID = re.compile(r"^[\w.:/=+-]{1,128}$")


class RequestMiddleware:
    """Assigns the request id (SageMaker's inference id when present) and logs/measures every request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: list[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(Headers(scope=scope))
        scope[REQUEST_ID] = request_id
        fields: dict[str, Any] = {}
        scope[LOG_FIELDS] = fields
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            errors.exception("internal error")
            if not response_started:
                openai = scope["path"].startswith("/v1/")
                await JSONResponse(error_body(RuntimeError(), openai=openai), status_code=500)(scope, receive, send)
            status = 500
        finally:
            self._finish(scope, status=status, seconds=time.perf_counter() - started, fields=fields)
            request_id_var.reset(token)

    def _finish(self, scope: Scope, *, status: int, seconds: float, fields: dict[str, Any]) -> None:
        route = self._route(scope)
        self.metrics.observe_request(route=route, status=status, seconds=seconds)
        if route in ("/ping", "/metrics") and status == 200:
            return  # health checks every few seconds would drown the log
        log.info(
            "request",
            extra={
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                **fields,
            },
        )

    def _route(self, scope: Scope) -> str:
        """The route's template (``/endpoints/{name}/invocations``), so labels stay few."""
        partial = "unmatched"
        for route in self.routes:
            match, _ = route.matches(scope)
            path = str(getattr(route, "path", "other"))
            if match is Match.FULL:
                return path
            if match is Match.PARTIAL and partial == "unmatched":
                partial = path  # right path, wrong method
        return partial


def _request_id(headers: Headers) -> str:
    for name in ("x-amzn-sagemaker-inference-id", "x-request-id"):
        value = headers.get(name)
        if value and _SAFE_ID.match(value):
            return value
    return uuid.uuid4().hex
