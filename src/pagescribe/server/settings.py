"""The server's settings: the engine's options (``EngineOptions``) plus the server's own, one class read once.

Precedence, highest first: values passed in (the CLI's flags, derived from these fields), ``PAGESCRIBE_*``
environment variables, SageMaker's conventions (only when running under SageMaker), the defaults below. SageMaker's
own names are mapped in exactly one place, ``SageMakerDefaults``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pagescribe.engine.options import EngineOptions
from pagescribe.images import ImageLimits
from pagescribe.models.files import SAGEMAKER_MODEL_DIR
from pagescribe.wire.media import DEFAULT_MAX_IMAGES, MediaPolicy

MiB = 1024 * 1024
#: SageMaker real-time hosting gives a request 60 s; answering with partial text beats being cut off.
SAGEMAKER_TIME_LIMIT_S = 50.0

LogLevel = Literal["debug", "info", "warning", "error"]


class ServerSettings(EngineOptions):
    """Everything ``pagescribe serve`` can be told; each field is also ``PAGESCRIBE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PAGESCRIBE_", extra="ignore", validate_default=True, frozen=True)

    host: str = Field(default="127.0.0.1", description="address to listen on (0.0.0.0 under SageMaker)")
    port: int = Field(default=8080, ge=0, le=65535, description="port to listen on (0: any free port)")
    time_limit_s: float | None = Field(
        default=None, gt=0, description="default time budget per request, in seconds (under SageMaker: 50)",
        json_schema_extra={"flag": "--time-limit"},
    )
    max_body_bytes: int = Field(default=32 * MiB, ge=1024, description="largest request body accepted")
    max_image_bytes: int = Field(default=20 * MiB, ge=1, description="largest encoded image accepted")
    max_image_pixels: int = Field(default=64_000_000, ge=1, description="most pixels a decoded image may have")
    max_image_side: int | None = Field(default=2048, ge=1, description="longer image sides are downscaled")
    max_images: int = Field(default=DEFAULT_MAX_IMAGES, ge=1, description="most images one request may carry")
    allowed_image_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="hosts remote image_url may name, comma-separated (default: none)"
    )
    image_fetch_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="time allowed to fetch one remote image (allowlisted hosts only)"
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="when set, every route but /ping and /execution-parameters needs it "
        "(Authorization: Bearer KEY or X-Api-Key: KEY)",
    )
    shutdown_timeout_s: float = Field(default=25.0, ge=0, description="grace period for in-flight requests")
    stream_ping_s: float = Field(
        default=15.0, ge=0, description="an event stream (OpenAI, TGI) silent this long, waiting for its first "
        "token, starts anyway and is sent a ':' comment line as often, so clients' read timeouts hold (0: never)",
    )
    log_level: LogLevel = Field(default="info", description="log level")
    debug: bool = Field(default=False, description="log prompt text (never image bytes)")
    sagemaker: bool | None = Field(default=None, description="SageMaker conventions (default: detected)")
    ui: bool = Field(default=True, description="serve the playground page at /ui (off under SageMaker)")

    def engine_options(self) -> EngineOptions:
        """The engine's part of these settings."""
        return EngineOptions(**{name: getattr(self, name) for name in EngineOptions.model_fields})

    @field_validator("allowed_image_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: Any) -> Any:
        # PAGESCRIBE_API_KEY= (set but empty) must not turn on a key nobody can send.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SageMakerDefaults(settings_cls))

    @property
    def media_policy(self) -> MediaPolicy:
        limits = ImageLimits(
            max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels, max_side=self.max_image_side
        )
        return MediaPolicy(
            limits=limits,
            allowed_hosts=frozenset(self.allowed_image_hosts),
            fetch_timeout_s=self.image_fetch_timeout_s,
            max_images=self.max_images,
        )


class SageMakerDefaults(PydanticBaseSettingsSource):
    """SageMaker's names and conventions, as defaults below ``PAGESCRIBE_*``.

    Applies when ``sagemaker`` is set, or when SageMaker's signs are present (``SAGEMAKER_BIND_TO_PORT`` or
    the ``/opt/ml/model`` directory): listen on ``0.0.0.0:$SAGEMAKER_BIND_TO_PORT`` (8080), load the model
    from ``/opt/ml/model``, give requests 50 s so they finish inside the 60 s real-time limit, serve no playground.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # every value comes from __call__

    def __call__(self) -> dict[str, Any]:
        env = os.environ
        explicit = self.current_state.get("sagemaker")
        detected = "SAGEMAKER_BIND_TO_PORT" in env or SAGEMAKER_MODEL_DIR.is_dir()
        if not (detected if explicit is None else _truthy(explicit)):
            return {}
        values: dict[str, Any] = {
            "sagemaker": True,
            "host": "0.0.0.0",
            "port": env.get("SAGEMAKER_BIND_TO_PORT", "8080"),
            "time_limit_s": SAGEMAKER_TIME_LIMIT_S,
            "model": str(SAGEMAKER_MODEL_DIR),
            "ui": False,
        }
        level = env.get("SAGEMAKER_CONTAINER_LOG_LEVEL", "")
        if level.isdigit():  # SageMaker passes Python's numeric levels (20 = INFO)
            values["log_level"] = {10: "debug", 20: "info", 30: "warning"}.get(int(level), "error")
        return values


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in {"1", "true", "yes", "on"}
