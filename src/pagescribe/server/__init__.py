"""The HTTP server: ``create_app(settings, engine)``, and ``run`` (``server/run.py``) that serves it on uvicorn."""

from pagescribe.server.app import create_app
from pagescribe.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
