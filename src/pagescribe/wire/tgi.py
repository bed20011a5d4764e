"""Format C, the TGI / LMI string shape: ``{"inputs": "<a string>", "parameters": {...}, "stream": false}``.

What LangChain's documented ``SagemakerEndpoint`` content handler, LiteLLM's ``sagemaker/`` route and the Hugging
Face (TGI) and DJL (LMI) containers' users send. The string is one user turn (the model's chat template is applied,
as for the other formats, so text that imitates special tokens stays text). Images go inline in it as Markdown,
``![](data:image/png;base64,...)`` (TGI's convention for vision models), or at ``<ImageHere>`` markers with a
top-level ``image``/``images``. TGI's parameter names are accepted with TGI's meaning; those pagescribe cannot honour
(``watermark``, ``decoder_input_details``, ``best_of`` > 1, ``typical_p``) are a 400 naming them. The answer has
TGI's shape, ``[{"generated_text": ..., "details": {...}}]``; streamed, TGI's server-sent token events.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from pydantic import Field, model_validator

from pagescribe.errors import InvalidRequest
from pagescribe.types import (
    GenerationRequest,
    GenerationResult,
    ImageInput,
    ImagePart,
    Message,
    Part,
    SamplingParams,
    TokenLogprob,
)
from pagescribe.wire.media import MediaPolicy, decode_inline
from pagescribe.wire.params import MAX_TOP_LOGPROBS, SamplingFields, Text, WireModel, with_prompt
from pagescribe.wire.sagemaker import IMAGE_MARKER, place_images

#: ``![alt](data:image/...;base64,...)`` or ``![alt](https://...)``: an image, in TGI's inline Markdown convention.
MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]{0,1000}\]\(\s*((?:data:image/|https?://)[^)\s]+)\s*\)")
#: TGI's names for why generation ended.
FINISH = {"stop": "eos_token", "length": "length", "time_limit": "length", "cancelled": "length"}


class TgiParameters(SamplingFields):
    """TGI's ``parameters`` (and pagescribe's own sampling names, which mean what they mean everywhere)."""

    do_sample: bool | None = Field(default=None, description="false: greedy; true: sample (temperature default 1)")
    details: bool = Field(default=False, description="add TGI's details: finish reason, token count, tokens")
    return_full_text: bool = Field(default=False, description="prepend the input string to generated_text")
    truncate: int | None = Field(default=None, ge=1, le=1_000_000, description="keep the last N tokens of the text")
    top_n_tokens: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS, description="alternatives in details")
    watermark: bool = False
    decoder_input_details: bool = False
    best_of: int | None = Field(default=None, ge=1)
    typical_p: float | None = None

    @model_validator(mode="after")
    def _honourable(self) -> TgiParameters:
        refused = {
            "watermark": self.watermark and "pagescribe does not watermark its output",
            "decoder_input_details": self.decoder_input_details and "pagescribe reports no prompt-token details",
            "best_of": (self.best_of or 1) > 1 and "pagescribe generates one sequence per request",
            "typical_p": self.typical_p is not None and "llama.cpp's typical sampling is not offered",
        }
        for name, reason in refused.items():
            if reason:
                raise ValueError(f"{name} is not supported: {reason}")
        return self


class TgiRequest(WireModel):
    """The body: a string, its parameters, TGI's top-level ``stream``, and images for ``<ImageHere>`` markers."""

    inputs: Text = Field(max_length=50_000_000)
    parameters: TgiParameters = Field(default_factory=TgiParameters)
    stream: bool = False
    image: str | None = None
    images: list[str] | None = None


def to_request(
    body: TgiRequest, *, policy: MediaPolicy, request_id: str, max_tokens_default: int | None = None
) -> GenerationRequest:
    """One user turn: the string's text with its Markdown images (and the top-level ones at their markers)."""
    given = [body.image] if body.image is not None else []
    given += body.images or []
    inline = MARKDOWN_IMAGE.findall(body.inputs)
    policy.check_image_count(len(given) + len(inline), param="inputs")
    top = [decode_inline(text, policy=policy, source=_name(body, k)) for k, text in enumerate(given)]
    parts = _parts(body.inputs, top, policy=policy)
    params = body.parameters
    return GenerationRequest(
        messages=with_prompt((Message("user", parts),), params.named_prompt()),
        params=_sampling(params, max_tokens_default=max_tokens_default),
        time_limit_s=params.time_limit_s,
        request_id=request_id,
        truncate=params.truncate,
    )


def _name(body: TgiRequest, k: int) -> str:
    if body.image is not None:
        return "image" if k == 0 else f"images[{k - 1}]"
    return f"images[{k}]"


def _parts(inputs: str, top: list[ImageInput], *, policy: MediaPolicy) -> tuple[Part, ...]:
    """The string as parts: Markdown images where they are; the top-level images at ``<ImageHere>`` markers, in
    order, or before everything without markers (as in format A)."""
    pieces = MARKDOWN_IMAGE.split(inputs)  # text, url, text, url, ..., text
    markers = [len(IMAGE_MARKER.findall(text)) for text in pieces[0::2]]
    if sum(markers) not in (0, len(top)):
        raise InvalidRequest(
            f"inputs has {sum(markers)} <ImageHere> marker(s) but the request carries {len(top)} image(s): give one "
            "image per marker, or no marker to put the images first",
            param="inputs",
        )
    parts: list[Part] = [] if sum(markers) else [ImagePart(i) for i in top]
    waiting = iter(top if sum(markers) else [])
    for k, piece in enumerate(pieces):
        if k % 2:
            parts.append(ImagePart(decode_inline(piece, policy=policy, source=f"inputs: Markdown image {k // 2 + 1}")))
        else:
            parts.extend(place_images(piece, [next(waiting) for _ in range(markers[k // 2])], where="inputs"))
    return tuple(parts)


def _sampling(params: TgiParameters, *, max_tokens_default: int | None) -> SamplingParams:
    """TGI's rule: greedy unless ``do_sample``, or a sampling knob (temperature, top_k, top_p < 1) is given;
    ``do_sample: false`` is greedy whatever else is set. ``details`` asks for the tokens' log-probabilities."""
    sampling = params.sampling_params(max_tokens_default=max_tokens_default)
    given = set(sampling.given or ())
    changes: dict[str, Any] = {}
    knobs = params.temperature not in (None, 1.0) or params.top_k is not None or (params.top_p or 1.0) < 1.0
    sample = params.do_sample if params.do_sample is not None else knobs
    if not sample:
        changes["temperature"] = 0.0
    elif params.temperature is None:
        changes["temperature"] = 1.0
    if params.details and sampling.logprobs is None:
        changes["logprobs"] = params.top_n_tokens or 0
    given.update(changes)
    return dataclasses.replace(sampling, **changes, given=frozenset(given))


def generated_text(body: TgiRequest, result: GenerationResult) -> str:
    return body.inputs + result.text if body.parameters.return_full_text else result.text


def details(result: GenerationResult, body: TgiRequest) -> dict[str, Any]:
    """TGI's ``details``: why it ended, how many tokens, the seed, and each token with its log-probability."""
    tokens = result.logprobs or ()
    out: dict[str, Any] = {
        "finish_reason": FINISH.get(result.finish_reason, "length"),
        "generated_tokens": result.usage.completion_tokens,
        "seed": body.parameters.seed,
        "prefill": [],
        "tokens": [_token(t) for t in tokens],
    }
    if body.parameters.top_n_tokens:
        out["top_tokens"] = [[_token(alt) for alt in t.top] for t in tokens]
    return out


def _token(entry: TokenLogprob) -> dict[str, Any]:
    return {"id": entry.id, "text": entry.token, "logprob": round(entry.logprob, 6), "special": False}


def answer(result: GenerationResult, body: TgiRequest) -> dict[str, Any]:
    """One answer of TGI's list: ``{"generated_text": ...}``, with ``details`` when asked."""
    data: dict[str, Any] = {"generated_text": generated_text(body, result)}
    if body.parameters.details:
        data["details"] = details(result, body)
    return data


def token_event(text: str) -> bytes:
    """A streamed piece as TGI sends it. Pieces are text as it decodes (a piece may hold several tokens), so they
    carry no token id (-1) and no log-probability."""
    token = {"id": -1, "text": text, "logprob": None, "special": False}
    return _sse({"index": 0, "token": token, "generated_text": None, "details": None})


def final_event(result: GenerationResult, body: TgiRequest) -> bytes:
    """The last event: an empty special token, the whole ``generated_text`` and, when asked, the details."""
    token = {"id": -1, "text": "", "logprob": None, "special": True}
    extra = details(result, body) if body.parameters.details else None
    return _sse({"index": 0, "token": token, "generated_text": generated_text(body, result), "details": extra})


def _sse(obj: Any) -> bytes:
    return b"data:" + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
