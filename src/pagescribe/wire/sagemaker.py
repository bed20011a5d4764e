"""Format A, the dialog batch: ``{"inputs": [[{role, content, image}]], "parameters": {...}}`` <-> types.

This is the JumpStart Llama-2-chat request shape with a per-message ``image`` field and MiniGPT's
``<ImageHere>`` marker. Only ``<ImageHere>`` (alone or as ``<Img><ImageHere></Img>``) means anything here;
any other marker-like text (``<image>``, ``[INST]``, ``</s>``) is ordinary text for the engine to neutralise.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from pagescribe.errors import InvalidRequest
from pagescribe.types import (
    GenerationRequest,
    GenerationResult,
    ImageInput,
    ImagePart,
    Message,
    Part,
    TextPart,
)
from pagescribe.wire.media import MediaPolicy, decode_inline
from pagescribe.wire.params import SamplingFields, Text, WireModel, with_prompt

#: ``<Img><ImageHere></Img>`` first, so the MiniGPT wrapper goes with its marker.
IMAGE_MARKER = re.compile(r"<Img>\s*<ImageHere>\s*</Img>|<ImageHere>")


class DialogMessage(WireModel):
    """One turn of a dialog; ``image``/``images`` hold base64 or ``data:`` URIs."""

    role: Literal["system", "user", "assistant"]
    content: Text = Field(max_length=1_000_000)
    image: str | None = None
    images: list[str] | None = None


class Parameters(SamplingFields):
    """Sampling parameters plus ``stream``."""

    stream: bool = False


class DialogBatchRequest(WireModel):
    """A list of dialogs, each answered independently, in order."""

    inputs: list[list[DialogMessage]] = Field(min_length=1)
    parameters: Parameters = Field(default_factory=Parameters)

    @property
    def stream(self) -> bool:
        return self.parameters.stream


def to_requests(
    body: DialogBatchRequest, *, policy: MediaPolicy, request_id: str, max_tokens_default: int | None = None
) -> list[GenerationRequest]:
    """One ``GenerationRequest`` per dialog; images are decoded (and checked) here, in the caller's thread."""
    params = body.parameters.sampling_params(max_tokens_default=max_tokens_default)
    prompt = body.parameters.named_prompt()
    for d, dialog in enumerate(body.inputs):
        check_dialog([m.role for m in dialog], where=f"inputs[{d}]")
    policy.check_image_count(sum(_image_count(m) for dialog in body.inputs for m in dialog), param="inputs")
    requests = []
    for d, dialog in enumerate(body.inputs):
        messages = tuple(_message(m, policy=policy, where=f"inputs[{d}][{i}]") for i, m in enumerate(dialog))
        requests.append(
            GenerationRequest(
                messages=with_prompt(messages, prompt),
                params=params,
                time_limit_s=body.parameters.time_limit_s,
                request_id=request_id if len(body.inputs) == 1 else f"{request_id}-{d}",
            )
        )
    return requests


def check_dialog(roles: list[str], *, where: str) -> None:
    """A dialog needs a user turn: an empty or system-only dialog asks nothing (a 400, not a guess)."""
    if not roles:
        raise InvalidRequest(f"{where} is an empty dialog", param=where)
    if "user" not in roles:
        raise InvalidRequest(
            f"{where} has no user message (roles: {', '.join(roles)}): a dialog needs at least one user turn",
            param=where,
        )


def _image_count(message: DialogMessage) -> int:
    return (message.image is not None) + len(message.images or [])


def _message(message: DialogMessage, *, policy: MediaPolicy, where: str) -> Message:
    sources = [(f"{where}.image", message.image)] if message.image is not None else []
    sources += [(f"{where}.images[{k}]", text) for k, text in enumerate(message.images or [])]
    images = [decode_inline(text, policy=policy, source=source) for source, text in sources]
    return Message(message.role, place_images(message.content, images, where=where))


def place_images(content: str, images: list[ImageInput], *, where: str = "content") -> tuple[Part, ...]:
    """Put each image where its ``<ImageHere>`` marker is (markers removed); no marker: images first."""
    pieces = IMAGE_MARKER.split(content)
    markers = len(pieces) - 1
    if markers == 0:
        text = (TextPart(content),) if content else ()
        return (*(ImagePart(i) for i in images), *text)
    if markers != len(images):
        raise InvalidRequest(
            f"{where}.content has {markers} <ImageHere> marker(s) but the message carries {len(images)} "
            "image(s): give one image per marker, or no marker to put the images before the text",
            param=f"{where}.content",
        )
    parts: list[Part] = []
    for k, piece in enumerate(pieces):
        if piece:
            parts.append(TextPart(piece))
        if k < len(images):
            parts.append(ImagePart(images[k]))
    return tuple(parts)


def answer(result: GenerationResult) -> dict[str, Any]:
    """One dialog's answer, JumpStart-style plus ``generated_text``, ``finish_reason``, usage and timings (and, when
    asked for, ``logprobs`` as OpenAI lists them and the answer's ``confidence``)."""
    data: dict[str, Any] = {
        "generation": {"role": "assistant", "content": result.text},
        "generated_text": result.text,
        "finish_reason": result.finish_reason,
        "usage": result.usage.as_dict(),
        "model": result.model,
        "timings": result.timings.as_dict(),
    }
    if result.logprobs is not None:
        data["logprobs"] = [t.as_dict() for t in result.logprobs]
        data["confidence"] = result.confidence
    return data


def token_line(text: str, *, index: int) -> dict[str, Any]:
    """A streamed piece of dialog ``index``'s answer."""
    return {"token": {"text": text}, "index": index}


def final_line(result: GenerationResult, *, index: int) -> dict[str, Any]:
    """The last streamed record of dialog ``index``: the whole answer, as in the non-streamed list."""
    return {**answer(result), "index": index}
