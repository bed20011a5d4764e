"""A real server in its own process, as a container runs it: start, wait, poke, measure, signal, read its log.

``serve_tiny`` runs ``pagescribe serve`` on the tiny model; ``serve_script`` runs a short Python script (a
FakeEngine behind ``pagescribe.server.run.run``) for the faults the real model cannot be made to show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from servers import free_port

MiB = 1024 * 1024

# A FakeEngine server: argv[1] is the port, argv[2] a JSON object of FakeEngine options, argv[3] of settings.
FAKE_SERVER = """
import json, sys
from pagescribe.engine.fake import FakeEngine
from pagescribe.server.run import run
from pagescribe.server.logging import configure_logging
from pagescribe.server.settings import ServerSettings

configure_logging(level="info")
engine = FakeEngine(**json.loads(sys.argv[2]))
run(ServerSettings(host="127.0.0.1", port=int(sys.argv[1]), **json.loads(sys.argv[3])), engine)
"""


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.02) -> float:
    """Poll ``condition`` until true; returns the seconds it took, fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - started


class ServerProcess:
    """A server subprocess on a free loopback port; its stderr (the JSON log) goes to ``log_path``."""

    def __init__(self, args: list[str], *, port: int, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        full_env = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log, env=full_env)

    @property
    def pid(self) -> int:
        return self.process.pid

    def ping(self, timeout: float = 2.0) -> httpx.Response | None:
        """``/ping``'s answer, or None while nothing listens yet."""
        try:
            return httpx.get(f"{self.url}/ping", timeout=timeout)
        except httpx.TransportError:
            return None

    def wait_for_ping(self, status: int, *, timeout: float = 60.0) -> httpx.Response:
        answers: list[httpx.Response] = []

        def answered() -> bool:
            assert self.process.poll() is None, f"the server exited with {self.process.returncode}:\n{self.log()}"
            response = self.ping()
            if response is not None and response.status_code == status:
                answers.append(response)
                return True
            return False

        wait_until(answered, timeout=timeout, what=f"/ping {status}", every=0.05)
        return answers[-1]

    def rss_bytes(self) -> int:
        """The server's resident memory, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    def metric(self, series: str) -> float:
        """One Prometheus sample by its exact series text (``name`` or ``name{labels}``); 0 when absent."""
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, *, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit status (SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"the server did not exit within {timeout} s of SIGTERM") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


@contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    try:
        yield server
    finally:
        server.close()


def serve_tiny(
    model_dir: Path, *, log_path: Path, options: list[str] | None = None, env: dict[str, str] | None = None
) -> ServerProcess:
    """``pagescribe serve`` on the tiny model (two threads, a 1024-token context), the way a container starts."""
    port = free_port()
    args = [sys.executable, "-m", "pagescribe.cli", "serve", "--model", str(model_dir), "--port", str(port)]
    args += ["--ctx", "1024", "--threads", "2", *(options or [])]
    return ServerProcess(args, port=port, log_path=log_path, env=env)


def serve_fake(
    *, log_path: Path, engine: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
) -> ServerProcess:
    """A FakeEngine server (``FakeEngine(**engine)``, ``ServerSettings(**settings)``) in its own process."""
    import json

    port = free_port()
    args = [sys.executable, "-c", FAKE_SERVER, str(port), json.dumps(engine or {}), json.dumps(settings or {})]
    return ServerProcess(args, port=port, log_path=log_path)
