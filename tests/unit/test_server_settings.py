"""Settings: PAGESCRIBE_* environment, SageMaker's conventions mapped in one place, and precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagescribe.server import settings as settings_module
from pagescribe.server.settings import ServerSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("PAGESCRIBE_", "SAGEMAKER_")):
            monkeypatch.delenv(name)
    # No real /opt/ml/model on this machine decides anything in these tests.
    monkeypatch.setattr(settings_module, "SAGEMAKER_MODEL_DIR", tmp_path / "no-such-dir")


def test_laptop_defaults() -> None:
    s = ServerSettings()
    assert (s.host, s.port, s.sagemaker, s.time_limit_s, s.model) == ("127.0.0.1", 8080, None, None, None)
    assert s.ui is True


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGESCRIBE_PORT", "9001")
    monkeypatch.setenv("PAGESCRIBE_QUEUE_SIZE", "3")
    monkeypatch.setenv("PAGESCRIBE_ALLOWED_IMAGE_HOSTS", "Images.Example.com, cdn.example.org")
    monkeypatch.setenv("PAGESCRIBE_LOG_LEVEL", "DEBUG")
    s = ServerSettings()
    assert (s.port, s.queue_size, s.log_level) == (9001, 3, "debug")
    assert s.allowed_image_hosts == ["images.example.com", "cdn.example.org"]
    assert s.media_policy.allowed_hosts == frozenset({"images.example.com", "cdn.example.org"})


def test_sagemaker_is_detected_from_its_port_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8081")
    s = ServerSettings()
    assert s.sagemaker is True
    assert (s.host, s.port) == ("0.0.0.0", 8081)
    assert s.model == str(settings_module.SAGEMAKER_MODEL_DIR)
    assert s.time_limit_s is not None and s.time_limit_s < 60
    assert s.ui is False  # no playground on an endpoint unless asked for


def test_sagemaker_is_detected_from_the_model_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model_dir = tmp_path / "opt-ml-model"
    model_dir.mkdir()
    monkeypatch.setattr(settings_module, "SAGEMAKER_MODEL_DIR", model_dir)
    s = ServerSettings()
    assert (s.sagemaker, s.host, s.port, s.model) == (True, "0.0.0.0", 8080, str(model_dir))


def test_flags_beat_environment_beat_sagemaker_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8080")
    monkeypatch.setenv("PAGESCRIBE_TIME_LIMIT_S", "20")
    monkeypatch.setenv("PAGESCRIBE_PORT", "7000")
    s = ServerSettings(port=7100)
    assert s.port == 7100  # flag
    assert s.time_limit_s == 20  # environment over SageMaker's 50 s
    assert s.host == "0.0.0.0"  # SageMaker default, nothing above it


def test_sagemaker_conventions_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8080")
    monkeypatch.setenv("PAGESCRIBE_SAGEMAKER", "false")
    s = ServerSettings()
    assert (s.host, s.time_limit_s) == ("127.0.0.1", None)


def test_sagemaker_numeric_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGESCRIBE_SAGEMAKER", "1")
    monkeypatch.setenv("SAGEMAKER_CONTAINER_LOG_LEVEL", "30")
    assert ServerSettings().log_level == "warning"


def test_bad_values_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ServerSettings(queue_size=-1)
    with pytest.raises(ValidationError):
        ServerSettings(port=70000)
