"""The container's entrypoint and health check, run here with a stub server in place of `pagescribe`.

SageMaker starts the image as `docker run IMAGE serve` and stops it with SIGTERM to PID 1, so the entrypoint must
*become* the server (exec), not start it as a child: the stub reports its own process id, which must be the one
the entrypoint was started as.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CONTAINER = Path(__file__).resolve().parents[2] / "container"
SERVE = CONTAINER / "serve"
HEALTHCHECK = CONTAINER / "healthcheck"

# A stand-in for the `pagescribe` console script: prints its pid and argv, then serves until SIGTERM, on which it
# says so and exits 0 (as the real server does after a graceful shutdown).
STUB_SERVER = f"""#!{sys.executable}
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("SIGTERM", flush=True), sys.exit(0)))
print(os.getpid(), *sys.argv[1:], flush=True)
if os.environ.get("STUB_WAIT"):
    time.sleep(30)
"""


@pytest.fixture
def stub_path(tmp_path: Path) -> str:
    """A PATH whose `pagescribe` is the stub server."""
    stub = tmp_path / "pagescribe"
    stub.write_text(STUB_SERVER)
    stub.chmod(0o755)
    return f"{tmp_path}{os.pathsep}{os.environ['PATH']}"


def _run(args: list[str], path: str) -> tuple[int, list[str]]:
    proc = subprocess.Popen([str(SERVE), *args], env={**os.environ, "PATH": path}, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    return proc.pid, out.split()


@pytest.mark.parametrize(
    ("args", "expected_argv"),
    [
        (["serve"], ["serve"]),  # what SageMaker runs
        ([], ["serve"]),  # CMD overridden with nothing
        (
            ["serve", "--threads", "4", "--model", "/opt/ml/model"],
            ["serve", "--threads", "4", "--model", "/opt/ml/model"],
        ),
    ],
)
def test_serve_execs_the_server_with_its_flags(stub_path: str, args: list[str], expected_argv: list[str]) -> None:
    pid, printed = _run(args, stub_path)

    assert printed[0] == str(pid), "the server runs in the entrypoint's own process (exec), not a child"
    assert printed[1:] == expected_argv


def test_other_commands_are_execed_as_given(stub_path: str) -> None:
    pid, printed = _run(["pagescribe", "model", "inspect", "/opt/ml/model"], stub_path)

    assert printed == [str(pid), "model", "inspect", "/opt/ml/model"]


def test_sigterm_to_the_entrypoint_reaches_the_server(stub_path: str) -> None:
    env = {**os.environ, "PATH": stub_path, "STUB_WAIT": "1"}
    proc = subprocess.Popen([str(SERVE), "serve"], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    started = proc.stdout.readline().split()  # the stub is up and has its handler installed
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=20)

    assert started == [str(proc.pid), "serve"]
    assert rest.split() == ["SIGTERM"]
    assert proc.returncode == 0


@pytest.mark.parametrize("script", ["serve", "healthcheck", "scripts/build.sh", "scripts/image-test.sh"])
def test_scripts_are_executable(script: str) -> None:
    # the image copies them as they are in the tree; without the bit, `docker run IMAGE` fails with EACCES
    assert os.access(CONTAINER / script, os.X_OK)


class _PingHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/ping" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ping_server() -> Iterator[tuple[type[_PingHandler], int]]:
    handler = type("Handler", (_PingHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, server.server_address[1]
    server.shutdown()
    server.server_close()


def _healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PAGESCRIBE_PORT", "SAGEMAKER_BIND_TO_PORT")}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)], env={**clean, **env}, capture_output=True, text=True, timeout=20
    )


def test_healthcheck_is_healthy_while_ping_answers_200(ping_server: tuple[type[_PingHandler], int]) -> None:
    _, port = ping_server

    assert _healthcheck({"PAGESCRIBE_PORT": str(port)}).returncode == 0
    assert _healthcheck({"SAGEMAKER_BIND_TO_PORT": str(port)}).returncode == 0


def test_healthcheck_is_unhealthy_while_the_model_loads(ping_server: tuple[type[_PingHandler], int]) -> None:
    handler, port = ping_server
    handler.status = 503

    result = _healthcheck({"PAGESCRIBE_PORT": str(port)})

    assert result.returncode == 1
    assert "503" in result.stderr


def test_healthcheck_is_unhealthy_when_nothing_listens() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and that nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]

    assert _healthcheck({"PAGESCRIBE_PORT": str(closed)}).returncode == 1
