"""Format B, OpenAI chat completions: request body -> ``GenerationRequest``, results -> completion objects."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from pagescribe.types import GenerationRequest, GenerationResult, ImageInput, ImagePart, Message, Part, TextPart
from pagescribe.wire.media import MediaPolicy, decode_inline, decode_url
from pagescribe.wire.params import SamplingFields, Text, WireModel, with_prompt
from pagescribe.wire.sagemaker import check_dialog


class TextContent(WireModel):
    """A text part (OpenAI's), or LangChain's standard text block, whose bookkeeping fields change nothing."""

    type: Literal["text"]
    text: Text
    id: str | None = Field(default=None, max_length=256, description="LangChain: the block's id")
    index: int | str | None = Field(default=None, description="LangChain: the block's place in a stream")
    annotations: list[dict[str, Any]] | None = Field(default=None, description="LangChain: citations")
    extras: dict[str, Any] | None = None


class ImageURL(WireModel):
    url: str = Field(description="a data:image/...;base64, URI (remote URLs only for allowlisted hosts)")
    detail: Literal["auto", "low", "high"] | None = None


class ImageContent(WireModel):
    type: Literal["image_url"]
    image_url: ImageURL


class ImageBlock(WireModel):
    """LangChain's standard image content block: ``{"type": "image", "base64": ..., "mime_type": ...}`` or
    ``{"type": "image", "url": ...}`` (LangChain 1.x), or the 0.3 form with ``source_type`` and ``data``."""

    type: Literal["image"]
    source_type: Literal["base64", "url"] | None = None
    data: str | None = Field(default=None, description="base64 (with source_type base64)")
    base64: str | None = None
    url: str | None = Field(default=None, description="a data: URI (remote URLs only for allowlisted hosts)")
    mime_type: str | None = Field(default=None, max_length=100)
    id: str | None = Field(default=None, max_length=256, description="the block's own id (not a file id)")
    index: int | str | None = None
    extras: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    file_id: str | None = Field(default=None, description="refused: this server keeps no uploaded files")

    @model_validator(mode="after")
    def _one_source(self) -> ImageBlock:
        if self.file_id is not None:
            raise ValueError("file_id is not supported: send the image as base64 or a data: URL")
        given = [name for name in ("data", "base64", "url") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("an image block needs exactly one of base64, data (with source_type base64) or url")
        expected = {"base64": "data", "url": "url"}.get(self.source_type or "")
        if expected is not None and given[0] != expected:
            raise ValueError(f"source_type {self.source_type} needs {expected}")
        return self

    def decode(self, *, policy: MediaPolicy, source: str) -> ImageInput:
        if self.url is not None:
            return decode_url(self.url, policy=policy, source=f"{source}.url")
        encoded = self.base64 if self.base64 is not None else self.data
        assert encoded is not None
        if self.mime_type:
            encoded = f"data:{self.mime_type};base64,{encoded}"
        return decode_inline(encoded, policy=policy, source=source)


ContentPart = Annotated[TextContent | ImageContent | ImageBlock, Field(discriminator="type")]


class ChatMessage(WireModel):
    """One chat turn; ``developer`` is OpenAI's newer name for ``system``."""

    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(WireModel):
    include_usage: bool = False


class ChatCompletionRequest(SamplingFields):
    """The chat-completions body: OpenAI's fields plus llama.cpp's sampling ones and ``time_limit_s``."""

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] | None = None
    user: str | None = None

    @field_validator("n", mode="before")
    @classmethod
    def _exact_type(cls, value: Any) -> Any:
        # A Literal compares by equality, so 1.0 and true would pass for n=1.
        if value is not None and type(value) is not int:
            raise ValueError("must be the integer 1")
        return value


def to_request(
    body: ChatCompletionRequest,
    *,
    policy: MediaPolicy,
    request_id: str,
    max_tokens_default: int | None = None,
) -> GenerationRequest:
    """Translate the body; ``data:`` images are decoded and checked here."""
    default = body.max_completion_tokens or max_tokens_default
    check_dialog([m.role for m in body.messages], where="messages")
    policy.check_image_count(sum(_image_count(m) for m in body.messages), param="messages")
    prompt = body.named_prompt()
    messages = tuple(_message(m, policy=policy, where=f"messages[{i}]") for i, m in enumerate(body.messages))
    return GenerationRequest(
        messages=with_prompt(messages, prompt),
        params=body.sampling_params(max_tokens_default=default),
        time_limit_s=body.time_limit_s,
        request_id=request_id,
    )


def _image_count(message: ChatMessage) -> int:
    if not isinstance(message.content, list):
        return 0
    return sum(isinstance(part, ImageContent | ImageBlock) for part in message.content)


def _message(message: ChatMessage, *, policy: MediaPolicy, where: str) -> Message:
    role = "system" if message.role == "developer" else message.role
    content = message.content
    if content is None:
        return Message(role, ())
    if isinstance(content, str):
        return Message(role, (TextPart(content),) if content else ())
    parts: list[Part] = []
    for k, part in enumerate(content):
        if isinstance(part, TextContent):
            parts.append(TextPart(part.text))
        elif isinstance(part, ImageBlock):
            parts.append(ImagePart(part.decode(policy=policy, source=f"{where}.content[{k}]")))
        else:
            source = f"{where}.content[{k}].image_url"
            parts.append(ImagePart(decode_url(part.image_url.url, policy=policy, source=source)))
    return Message(role, tuple(parts))


def finish_reason(result: GenerationResult) -> str:
    """OpenAI's vocabulary has no ``time_limit``: a cut-short answer reads as ``length`` to its clients."""
    return "length" if result.finish_reason == "time_limit" else result.finish_reason


def completion(result: GenerationResult, *, completion_id: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` object; ``stop_reason`` and ``timings`` say what OpenAI's fields cannot."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "logprobs": choice_logprobs(result),
                "finish_reason": finish_reason(result),
                "stop_reason": result.finish_reason,
            }
        ],
        "usage": result.usage.as_dict(),
        "timings": result.timings.as_dict(),
    }


def choice_logprobs(result: GenerationResult) -> dict[str, Any] | None:
    """A choice's ``logprobs``: every token of the answer (with its alternatives), or ``None`` when not asked."""
    if result.logprobs is None:
        return None
    return {"content": [t.as_dict() for t in result.logprobs], "refusal": None}


def chunk(
    *,
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, str],
    finish: str | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a streamed answer (the last carries the answer's logprobs, when asked)."""
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }


def usage_chunk(result: GenerationResult, *, completion_id: str, created: int) -> dict[str, Any]:
    """The extra last chunk ``stream_options.include_usage`` asks for."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": result.model,
        "choices": [],
        "usage": result.usage.as_dict(),
    }


def model_object(model_id: str, *, created: int | None = None) -> dict[str, Any]:
    """``GET /v1/models/{id}``: the loaded model."""
    return {"id": model_id, "object": "model", "created": created or int(time.time()), "owned_by": "pagescribe"}


def model_list(model_id: str, *, created: int | None = None) -> dict[str, Any]:
    """``GET /v1/models``: the one loaded model."""
    return {"object": "list", "data": [model_object(model_id, created=created)]}
