"""``create_app(settings, engine)``: the ASGI application, with the engine passed in (no module globals)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pagescribe.engine.base import Engine
from pagescribe.errors import PagescribeError
from pagescribe.server import playground, routes
from pagescribe.server.auth import ApiKeyMiddleware
from pagescribe.server.metrics import Metrics
from pagescribe.server.middleware import RequestMiddleware
from pagescribe.server.openapi import build_openapi
from pagescribe.server.runtime import Runtime
from pagescribe.server.settings import ServerSettings


def create_app(settings: ServerSettings, engine: Engine) -> Starlette:
    """The server for ``engine``. Its lifespan starts loading the model and closes the engine at the end."""
    metrics = Metrics()
    runtime = Runtime(engine, settings=settings, metrics=metrics)
    table = _routes() + (playground.routes() if settings.ui else [])

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            # uvicorn has already let in-flight requests finish (its graceful-shutdown timeout).
            await anyio.to_thread.run_sync(runtime.stop)

    # Outermost first: every request is counted and logged, including those refused for want of a key.
    middleware = [Middleware(RequestMiddleware, metrics=metrics, routes=table)]
    if settings.api_key is not None:
        middleware.append(Middleware(ApiKeyMiddleware, key=settings.api_key.get_secret_value()))
    app = Starlette(
        routes=table,
        middleware=middleware,
        exception_handlers={PagescribeError: routes.error_response, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.services = routes.Services(settings=settings, runtime=runtime, metrics=metrics, openapi=build_openapi())
    return app


def _routes() -> list[BaseRoute]:
    return [
        Route("/ping", routes.ping, methods=["GET"]),
        Route("/invocations", routes.invocations, methods=["POST"]),
        Route("/execution-parameters", routes.execution_parameters, methods=["GET"]),
        Route("/endpoints/{name}/invocations", routes.runtime_invoke, methods=["POST"]),
        Route("/endpoints/{name}/invocations-response-stream", routes.runtime_stream, methods=["POST"]),
        Route("/v1/chat/completions", routes.chat_completions, methods=["POST"]),
        Route("/v1/models", routes.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", routes.model, methods=["GET"]),
        Route("/metrics", routes.metrics, methods=["GET"]),
        Route("/openapi.json", routes.openapi_document, methods=["GET"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404, 405) in the same JSON envelope as ours."""
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    detail: dict[str, object] = {"type": kind, "message": str(exc.detail), "param": None}
    if request.url.path.startswith("/v1/"):
        detail["code"] = exc.status_code
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)
