"""How the in-process engine is built: one settings class, one set of defaults, read once.

``describe``, ``convert``, ``serve`` (whose ``ServerSettings`` extends this class), ``Client.in_process`` and the
tests all build their engine from an ``EngineOptions``; the CLI flags are derived from these fields. Every field is
also the environment variable ``PAGESCRIBE_<NAME>`` (``PAGESCRIBE_MODEL``, ``PAGESCRIBE_SLOTS``, ...); values passed
in win over the environment.

Memory: the KV cache holds ``slots x ctx`` tokens (LLaVA-1.5-7B: 0.5 MB a token, so 2 slots x 4096 = 4 GB beside the
4.1 GB of weights; the 1b preset: 32 kB a token). A page with LLaVA-1.5 takes ~600 prompt tokens plus the answer.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pagescribe.models.files import SAGEMAKER_MODEL_DIR


class EngineOptions(BaseSettings):
    """Where the model comes from and how the engine runs it (each field is also ``PAGESCRIBE_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="PAGESCRIBE_", extra="ignore", validate_default=True, frozen=True)

    model: str | None = Field(
        default=None,
        description="text GGUF, a directory with the GGUF pair, a manifest, or a hub repo id (org/name[:QUANT]); "
        f"default: {SAGEMAKER_MODEL_DIR} when it exists",
        json_schema_extra={"short": "-m", "metavar": "PATH|DIR|ORG/NAME"},
    )
    mmproj: str | None = Field(
        default=None, description="the projector GGUF, when it cannot be found beside the model",
        json_schema_extra={"metavar": "PATH"},
    )
    family: str | None = Field(
        default=None,
        description="the model family to serve the pair as (its template, prompt, image sizing and output "
        "handling); default: detected from the GGUF pair",
        json_schema_extra={"metavar": "NAME"},
    )
    chat_template: str | None = Field(
        default=None, description="a Jinja2 chat template (a file, or the text itself) to use instead of the model's",
        json_schema_extra={"metavar": "FILE"},
    )
    ctx: int = Field(default=4096, ge=256, le=131072, description="context window of one request in tokens")
    threads: int | None = Field(default=None, ge=1, le=1024, description="CPU threads (default: all available)")
    slots: int = Field(default=2, ge=1, le=64, description="requests generated together by continuous batching")
    batch_size: int = Field(
        default=512, ge=8, le=8192,
        description="most tokens evaluated in one batch step (smaller: the others wait less, at some throughput)",
    )
    queue_size: int = Field(default=16, ge=0, description="requests that may wait for a slot before 503")
    image_cache_mb: int = Field(default=256, ge=0, description="memory for reusing embeddings of repeated images")
    prefix_cache_mb: int = Field(
        default=512, ge=0, description="host memory for shared prompt prefixes (the instructions) no slot holds"
    )
    retry_after_s: float = Field(default=2.0, gt=0, description="Retry-After when the queue is full")
    stall_timeout_s: float = Field(
        default=300.0, gt=0,
        description="a busy engine that finishes no batch step for this long is unhealthy (/ping 503)",
    )

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        from pagescribe.models.families import FAMILIES

        if value and value not in FAMILIES:
            raise ValueError(f"unknown model family {value!r}; choose one of: {', '.join(FAMILIES)}")
        return value or None

    def chat_template_text(self) -> str | None:
        """The chat template's text: read from the file ``chat_template`` names, or the value itself."""
        value = self.chat_template
        if value and len(value) < 4096 and "\n" not in value and Path(value).expanduser().is_file():
            return Path(value).expanduser().read_text(encoding="utf-8")
        return value

    def model_name(self) -> str:
        """What to call the model before it is resolved (the resolved files have the real id)."""
        if not self.model:
            return "pagescribe"
        return Path(self.model).name or self.model
