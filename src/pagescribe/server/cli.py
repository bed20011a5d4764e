"""``pagescribe serve``: settings -> engine -> ASGI app -> uvicorn, with a clean exit on SIGTERM."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from pagescribe.engine.base import Engine
from pagescribe.server.app import create_app
from pagescribe.server.lazy import LazyEngine
from pagescribe.server.logging import configure_logging
from pagescribe.server.settings import DEFAULT_SLOTS, ServerSettings


def build_engine(settings: ServerSettings) -> Engine:
    """The llama.cpp engine for ``settings``, resolved and loaded only when the server starts loading."""

    def build() -> Engine:
        from pagescribe.engine.llamacpp import LlamaCppEngine
        from pagescribe.models.resolve import resolve_model

        files = resolve_model(settings.model, mmproj=settings.mmproj)
        return LlamaCppEngine(
            files,
            n_ctx=settings.ctx,
            n_threads=settings.threads,
            n_batch=settings.batch_size,
            slots=settings.slots or DEFAULT_SLOTS,
            chat_template=_template(settings.chat_template),
            image_cache_mb=settings.image_cache_mb,
            prefix_cache_mb=settings.prefix_cache_mb,
        )

    name = Path(settings.model).name if settings.model else "pagescribe"
    return LazyEngine(build, model_id=name)


def _template(value: str | None) -> str | None:
    """A chat template given inline or as a file name."""
    if value and len(value) < 4096 and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8")
    return value


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


@click.command("serve")
@click.option("--model", help="Text GGUF, a directory with the GGUF pair, a manifest, or a hub repo id.")
@click.option("--mmproj", help="The projector GGUF, when it cannot be found next to the model.")
@click.option("--host", help="Address to listen on [default: 127.0.0.1; 0.0.0.0 under SageMaker].")
@click.option("--port", type=int, help="Port to listen on [default: 8080].")
@click.option("--threads", type=int, help="CPU threads for inference [default: all available].")
@click.option("--ctx", type=int, help="Context window of one request in tokens [default: 2048].")
@click.option("--slots", type=int, help="Requests generated together by continuous batching [default: 4].")
@click.option("--queue-size", type=int, help="Requests that may wait for a slot before 503 [default: 16].")
@click.option("--time-limit", "time_limit_s", type=float, help="Default time budget per request, seconds.")
@click.option("--chat-template", help="Jinja chat template (inline or a file) overriding the model's.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
@click.option("--debug", is_flag=True, default=None, help="Log prompt text (never image bytes).")
def serve_command(**options: Any) -> None:
    """Serve the model: the SageMaker hosting contract, the dialog-batch format and the OpenAI API.

    Every option can also be set as PAGESCRIBE_<NAME> in the environment; flags win.
    """
    try:
        settings = ServerSettings(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(_settings_problem(exc)) from exc
    configure_logging(level=settings.log_level)
    run(settings, build_engine(settings))


def _settings_problem(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())


if __name__ == "__main__":
    serve_command()
