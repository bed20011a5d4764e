"""Format B, OpenAI chat completions: request body -> ``GenerationRequest``, results -> completion objects."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from pagescribe.types import GenerationRequest, GenerationResult, ImagePart, Message, Part, TextPart
from pagescribe.wire.media import MediaPolicy, decode_url
from pagescribe.wire.params import SamplingFields, Text, WireModel
from pagescribe.wire.sagemaker import check_dialog


class TextContent(WireModel):
    type: Literal["text"]
    text: Text


class ImageURL(WireModel):
    url: str = Field(description="a data:image/...;base64, URI (remote URLs only for allowlisted hosts)")
    detail: Literal["auto", "low", "high"] | None = None


class ImageContent(WireModel):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextContent | ImageContent, Field(discriminator="type")]


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
    logprobs: Literal[False] | None = None

    @field_validator("n", "logprobs", mode="before")
    @classmethod
    def _exact_type(cls, value: Any, info: ValidationInfo) -> Any:
        # A Literal compares by equality, so 1.0 and true would pass for n=1, and 0 for false.
        wanted = int if info.field_name == "n" else bool
        if value is not None and type(value) is not wanted:
            raise ValueError(f"must be {'the integer 1' if wanted is int else 'false'}")
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
    messages = tuple(_message(m, policy=policy, where=f"messages[{i}]") for i, m in enumerate(body.messages))
    return GenerationRequest(
        messages=messages,
        params=body.sampling_params(max_tokens_default=default),
        time_limit_s=body.time_limit_s,
        request_id=request_id,
    )


def _image_count(message: ChatMessage) -> int:
    if not isinstance(message.content, list):
        return 0
    return sum(isinstance(part, ImageContent) for part in message.content)


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
                "finish_reason": finish_reason(result),
                "stop_reason": result.finish_reason,
            }
        ],
        "usage": result.usage.as_dict(),
        "timings": result.timings.as_dict(),
    }


def chunk(
    *, completion_id: str, created: int, model: str, delta: dict[str, str], finish: str | None = None
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a streamed answer."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
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


def model_list(model_id: str, *, created: int | None = None) -> dict[str, Any]:
    """``GET /v1/models``: the one loaded model."""
    return {
        "object": "list",
        "data": [
            {
                "id": model_id,
                "object": "model",
                "created": created or int(time.time()),
                "owned_by": "pagescribe",
            }
        ],
    }
