"""Optional API-key check for standalone use (``PAGESCRIBE_API_KEY``); under SageMaker, IAM does this job.

A plain ASGI middleware, so a request without the key is refused before its body is read. ``/ping`` and
``/execution-parameters`` stay open: SageMaker's health checks and batch transform call them without
credentials, and they reveal nothing. The key is compared in constant time, and never logged.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pagescribe.errors import Unauthorized
from pagescribe.server.middleware import LOG_FIELDS
from pagescribe.wire.errors import error_body, kind_of

#: Routes anyone may call, key or not.
#: Health checks, and the playground's static files (its calls to the model need the key like any other).
OPEN_PATHS = frozenset({"/ping", "/execution-parameters", "/ui", "/ui/", "/ui/index.html", "/ui/app.js", "/ui/app.css"})
_HEADER_NAME = "X-Api-Key"


class ApiKeyMiddleware:
    """Answers 401 (the usual JSON error envelope) unless the request carries ``key``.

    The key may come as ``Authorization: Bearer <key>`` (what OpenAI clients send) or ``X-Api-Key: <key>``.
    """

    def __init__(self, app: ASGIApp, *, key: str) -> None:
        self.app = app
        self._key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        problem = self._problem(Headers(scope=scope))
        if problem is None:
            await self.app(scope, receive, send)
            return
        error = Unauthorized(problem)
        fields = scope.get(LOG_FIELDS)
        if isinstance(fields, dict):
            fields["error"] = kind_of(error).type
        body = error_body(error, openai=scope["path"].startswith("/v1/"))
        headers = {"WWW-Authenticate": 'Bearer realm="pagescribe"'}
        response = JSONResponse(body, status_code=kind_of(error).status, headers=headers)
        await response(scope, receive, send)

    def _problem(self, headers: Headers) -> str | None:
        """``None`` when a presented key matches; otherwise what is wrong, for the 401's message."""
        offered = _offered_keys(headers)
        if not offered:
            return f"an API key is required: send Authorization: Bearer <key> or {_HEADER_NAME}: <key>"
        # Every offered key is compared (no early exit), each in constant time.
        matches = [hmac.compare_digest(candidate.encode("utf-8"), self._key) for candidate in offered]
        return None if any(matches) else "the API key is not valid"


def _offered_keys(headers: Headers) -> list[str]:
    keys = [value.strip() for value in headers.getlist(_HEADER_NAME.lower()) if value.strip()]
    for value in headers.getlist("authorization"):
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            keys.append(token.strip())
    return keys
