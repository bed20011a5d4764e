"""Helpers shared by tests that need a real server (no tests here): `pagescribe serve` on loopback, in a thread.

``sagemaker_env`` gives the environment under which boto3 (and ``Client.for_endpoint``) sends
``sagemaker-runtime`` calls to such a server, with dummy credentials and no local AWS configuration.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import httpx
import pytest

from pagescribe.engine.base import Engine
from pagescribe.server.run import make_server
from pagescribe.server.settings import ServerSettings

E = TypeVar("E", bound=Engine)


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer(Generic[E]):
    """The real app (``make_server``) around ``engine`` on a free loopback port; ready once entered.

    ``settings`` are further ``ServerSettings`` fields (``max_body_bytes``, ...).
    """

    def __init__(self, engine: E, *, wait_for_model: bool = True, **settings: Any) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.engine = engine
        self.wait_for_model = wait_for_model
        config = ServerSettings(host="127.0.0.1", port=port, log_level="error", **settings)
        self.server = make_server(config, engine)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer[E]:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < end, "the server did not start"
            time.sleep(0.02)
        if self.wait_for_model:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        """Until /ping says 200 (a real model loads after the port opens)."""
        end = time.monotonic() + timeout
        while httpx.get(f"{self.url}/ping").status_code != 200:
            assert time.monotonic() < end, "the model did not load"
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def sagemaker_env(endpoint_url: str) -> dict[str, str]:
    """Environment that points boto3's ``sagemaker-runtime`` at ``endpoint_url`` with dummy credentials."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
    }


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's AWS server on a free loopback port; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def use_moto(monkeypatch: pytest.MonkeyPatch, url: str, region: str) -> None:
    """Point every boto3 client at ``url`` with fake credentials, ignoring the developer's own AWS setup."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
