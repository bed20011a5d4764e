"""Sampling fields shared by the dialog-batch ``parameters`` and the OpenAI request body.

Names follow llama.cpp (``max_tokens``, ``repeat_penalty``); the TGI/Transformers spellings are accepted as
documented aliases. Every field is optional: what the caller leaves out keeps ``SamplingParams``' default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pagescribe.errors import InvalidRequest
from pagescribe.prompts import Prompt, load_prompt, packaged_prompts
from pagescribe.types import Message, SamplingParams, TextPart

MAX_TOKENS_LIMIT = 1_000_000
MAX_STOP_SEQUENCES = 16
#: OpenAI's bound on ``top_logprobs``.
MAX_TOP_LOGPROBS = 20


def _valid_unicode(text: str) -> str:
    # JSON's \ud800-style escapes can smuggle lone surrogates into a str; they cannot become UTF-8, so the
    # tokenizer would fail on them. Refuse them here, as the caller's error.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text holds an unpaired surrogate (\\u{ord(text[exc.start]):04x}) at {exc.start}") from None
    return text


#: Request text: any Unicode that can be encoded as UTF-8.
Text = Annotated[str, AfterValidator(_valid_unicode)]
StopItem = Annotated[Text, Field(min_length=1, max_length=256)]


class WireModel(BaseModel):
    """Strict by default: unknown fields are errors, strings are not numbers, NaN is not a number."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, populate_by_name=True)


class ResponseFormat(WireModel):
    """``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {"schema": {...}}}``."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = Field(
        default=None, description="OpenAI form: {name, schema, strict}; a bare JSON schema also works"
    )
    schema_: dict[str, Any] | None = Field(
        default=None, alias="schema", description="llama-cpp-python form: a JSON schema with type json_object"
    )

    def to_internal(self) -> dict[str, Any] | None:
        if self.type == "text":
            return None
        schema = self.json_schema if self.type == "json_schema" else None
        if self.schema_ is not None:
            schema = {"schema": self.schema_}
        if self.type == "json_schema" and schema is None:
            raise InvalidRequest(
                "response_format: type json_schema needs a json_schema object", param="response_format"
            )
        if schema is None:
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": schema}


class SamplingFields(WireModel):
    """The sampling knobs, with llama.cpp's meaning."""

    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT, description="tokens to generate")
    max_new_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT, description="alias of max_tokens")
    temperature: float | None = Field(default=None, ge=0, le=5)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0, le=1_000_000, description="0 disables top-k")
    min_p: float | None = Field(default=None, ge=0, le=1)
    repeat_penalty: float | None = Field(default=None, gt=0, le=10, description="1.0 disables it")
    repetition_penalty: float | None = Field(default=None, gt=0, le=10, description="alias of repeat_penalty")
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=-1, le=2**32 - 1, description="-1 or absent: a random seed")
    stop: StopItem | Annotated[list[StopItem], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    response_format: ResponseFormat | None = None
    image_max_side: int | None = Field(
        default=None, ge=16, le=8192,
        description="fit page images within this many pixels (longest side) before the projector; the model "
        "family bounds it (dynamic-resolution models: fewer tokens or more detail)",
    )
    time_limit_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="wall-clock budget; the text so far is returned when it ends",
    )
    logprobs: bool | None = Field(default=None, description="report each token's log-probability")
    top_logprobs: int | None = Field(
        default=None, ge=0, le=MAX_TOP_LOGPROBS, description="and this many likeliest alternatives (needs logprobs)"
    )
    prompt: str | None = Field(
        default=None,
        max_length=64,
        description="a packaged prompt by name (document, markdown): its text goes before the first user turn",
    )

    @model_validator(mode="after")
    def _one_spelling(self) -> SamplingFields:
        for name, alias in (("max_tokens", "max_new_tokens"), ("repeat_penalty", "repetition_penalty")):
            if getattr(self, name) is not None and getattr(self, alias) is not None:
                raise ValueError(f"give {name} or {alias}, not both")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    def named_prompt(self) -> Prompt | None:
        """The packaged prompt ``prompt`` names (``InvalidRequest`` listing the names when there is none)."""
        if self.prompt is None:
            return None
        if self.prompt not in packaged_prompts():
            known = ", ".join(packaged_prompts())
            raise InvalidRequest(f"prompt: no packaged prompt {self.prompt!r} (packaged: {known})", param="prompt")
        return load_prompt(self.prompt)

    def sampling_params(self, *, max_tokens_default: int | None = None) -> SamplingParams:
        """The internal ``SamplingParams``: given fields override the defaults, aliases folded in."""
        given: dict[str, Any] = {}
        max_tokens = self.max_tokens or self.max_new_tokens or max_tokens_default
        if max_tokens is not None:
            given["max_tokens"] = max_tokens
        repeat_penalty = self.repeat_penalty or self.repetition_penalty
        if repeat_penalty is not None:
            given["repeat_penalty"] = repeat_penalty
        for name in ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty",
                     "image_max_side"):
            value = getattr(self, name)
            if value is not None:
                given[name] = value
        if self.seed is not None and self.seed >= 0:
            given["seed"] = self.seed
        if self.stop is not None:
            given["stop"] = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if self.response_format is not None:
            given["response_format"] = self.response_format.to_internal()
        if self.logprobs:
            given["logprobs"] = self.top_logprobs or 0
        return SamplingParams(**given, given=frozenset(given))


def with_prompt(messages: tuple[Message, ...], prompt: Prompt | None) -> tuple[Message, ...]:
    """``messages`` with ``prompt``'s text put at the start of the first user turn, followed by a line break: the
    layout ``convert`` gives a page (instructions, then the image), so the two share a cached prefix."""
    if prompt is None:
        return messages
    first = next(i for i, m in enumerate(messages) if m.role == "user")
    turn = messages[first]
    placed = Message("user", (TextPart(prompt.text + "\n"), *turn.parts))
    return (*messages[:first], placed, *messages[first + 1 :])
