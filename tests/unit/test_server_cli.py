"""The ``serve`` command: flags become settings, bad flags are usage errors, a missing model is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_server_app import serve, wait_for_state

from pagescribe.cli import serve as cli
from pagescribe.engine.base import Engine
from pagescribe.engine.factory import build_engine
from pagescribe.server.settings import ServerSettings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ServerSettings, Engine]]:
    calls: list[tuple[ServerSettings, Engine]] = []
    monkeypatch.setattr(cli, "run", lambda settings, engine: calls.append((settings, engine)))
    monkeypatch.setattr(cli, "configure_logging", lambda **_: None)
    for name in ("PAGESCRIBE_PORT", "PAGESCRIBE_HOST", "SAGEMAKER_BIND_TO_PORT"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_flags_become_settings(started: list[Any]) -> None:
    args = [
        "--model",
        "m.gguf",
        "--port",
        "9123",
        "--host",
        "0.0.0.0",
        "--threads",
        "3",
        "--ctx",
        "2048",
        "--slots",
        "2",
        "--queue-size",
        "5",
        "--time-limit",
        "40",
        "--debug",
    ]
    result = CliRunner().invoke(cli.serve_command, args)
    assert result.exit_code == 0, result.output
    [(settings, engine)] = started
    assert (settings.model, settings.port, settings.host, settings.threads, settings.ctx) == (
        "m.gguf",
        9123,
        "0.0.0.0",
        3,
        2048,
    )
    assert (settings.slots, settings.queue_size, settings.time_limit_s, settings.debug) == (2, 5, 40.0, True)
    assert engine.model_id == "m.gguf"


def test_environment_fills_what_flags_leave_out(started: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGESCRIBE_PORT", "9200")
    assert CliRunner().invoke(cli.serve_command, []).exit_code == 0
    assert started[0][0].port == 9200


def test_bad_values_are_usage_errors(started: list[Any]) -> None:
    result = CliRunner().invoke(cli.serve_command, ["--queue-size", "-3"])
    assert result.exit_code == 2 and "queue_size" in result.output
    assert not started


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli.serve_command, ["--help"])
    for option in ("--model", "--host", "--port", "--threads", "--ctx", "--slots"):
        assert option in result.output


def test_the_module_runs_as_a_script() -> None:
    done = subprocess.run([sys.executable, "-m", "pagescribe.cli.serve", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--model" in done.stdout


async def test_a_missing_model_leaves_ping_503_with_the_reason(tmp_path: Path) -> None:
    settings = ServerSettings(model=str(tmp_path / "absent.gguf"))
    async with serve(build_engine(settings), wait_ready=False) as client:
        ping = await wait_for_state(client, "failed")
    assert ping.status_code == 503
    assert ping.json()["status"] == "failed" and "absent.gguf" in ping.json()["reason"]
