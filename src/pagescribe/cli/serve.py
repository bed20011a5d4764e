"""`pagescribe serve`: settings -> engine -> ASGI app -> uvicorn, with a clean exit on SIGTERM."""

from __future__ import annotations

from typing import Any

import click

from pagescribe.cli.options import settings_from, settings_options
from pagescribe.engine.factory import build_engine
from pagescribe.server.logging import configure_logging
from pagescribe.server.run import run
from pagescribe.server.settings import ServerSettings


@click.command("serve")
@settings_options(ServerSettings)
def serve_command(**options: Any) -> None:
    """Serve the model: the SageMaker hosting contract, the dialog-batch format and the OpenAI API.

    Every option can also be set as PAGESCRIBE_<NAME> in the environment; flags win. The model is found and
    loaded after the port opens (/ping says 503 "loading" until then).
    """
    settings = settings_from(ServerSettings, options)
    configure_logging(level=settings.log_level)
    run(settings, build_engine(settings.engine_options()))


if __name__ == "__main__":
    serve_command()
