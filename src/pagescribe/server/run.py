"""Running the app: uvicorn with the server's settings, and a clean exit on SIGTERM (what SageMaker sends)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from pagescribe.engine.base import Engine
from pagescribe.server.app import create_app
from pagescribe.server.settings import ServerSettings


def run(settings: ServerSettings, engine: Engine) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get ``shutdown_timeout_s`` to finish, then exit 0."""
    with _signals_end_cleanly():
        make_server(settings, engine).run()


def make_server(settings: ServerSettings, engine: Engine) -> uvicorn.Server:
    """The uvicorn server ``run`` uses (tests run it on a thread)."""
    config = uvicorn.Config(
        create_app(settings, engine),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON handler (configure_logging) formats uvicorn's lines too
        access_log=False,  # the request middleware writes a richer access line
        timeout_graceful_shutdown=round(settings.shutdown_timeout_s),
        server_header=False,
    )
    return uvicorn.Server(config)


@contextlib.contextmanager
def _signals_end_cleanly() -> Iterator[None]:
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with the default
    # handler that kills the process (exit 143). The shutdown was orderly, so end with 0 as SageMaker expects.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
