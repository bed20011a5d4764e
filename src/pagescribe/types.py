"""The one internal request/result vocabulary. Wire adapters translate to and from these; engines consume them."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "time_limit", "cancelled"]


@dataclass(frozen=True, slots=True)
class ImageInput:
    """A verified, decoded image: 8-bit RGB pixels, row-major, ``width * height * 3`` bytes.

    ``encoded`` keeps the file bytes the pixels were decoded from (when they were), so a client can send the
    image on as it came instead of encoding it again, and ``origin`` where they came from (a file's path), for
    messages; the engine only ever reads ``rgb``.
    """

    width: int
    height: int
    rgb: bytes = field(repr=False)
    sha256: str = ""
    encoded: bytes | None = field(default=None, repr=False, compare=False)
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if len(self.rgb) != self.width * self.height * 3:
            raise ValueError("rgb buffer does not match width * height * 3")
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.rgb).hexdigest())


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    image: ImageInput


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn; parts keep the order in which text and images appear."""

    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def user(cls, text: str, *images: ImageInput) -> Message:
        """A user turn with the images first and the text after, the usual layout for one page."""
        return cls("user", (*(ImagePart(i) for i in images), TextPart(text)))

    @property
    def images(self) -> tuple[ImageInput, ...]:
        return tuple(p.image for p in self.parts if isinstance(p, ImagePart))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling settings, with llama.cpp's meaning. ``seed=None`` means a fresh random seed per request.

    ``given`` names the fields a caller set when the parameters came from a request (``None``: all of them, as
    for parameters built in code), so a client forwards what was asked and leaves the rest to the server.
    """

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None
    #: The longest side pages are fitted within before the projector (None: the model family's default).
    image_max_side: int | None = None
    #: Report each generated token's log-probability (and this many most likely alternatives); ``None``: don't.
    logprobs: int | None = None
    given: frozenset[str] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Every setting (``given`` left out), JSON-ready: what a page record and its cache key hold.

        ``image_max_side`` and ``logprobs`` are there only when set, so records and keys made without them stay
        as they were."""
        data: dict[str, Any] = {
            "max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
            "min_p": self.min_p, "repeat_penalty": self.repeat_penalty, "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty, "seed": self.seed, "stop": list(self.stop),
            "response_format": self.response_format,
        }
        if self.image_max_side is not None:
            data["image_max_side"] = self.image_max_side
        if self.logprobs is not None:
            data["logprobs"] = self.logprobs
        return data


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One dialog to answer.

    ``time_limit_s`` is a wall-clock budget counted from ``arrived`` (``time.monotonic()`` when the request came
    in), so time spent waiting for the model is spent from it too; ``deadline`` is the one place it is computed.
    """

    messages: tuple[Message, ...]
    params: SamplingParams = SamplingParams()
    time_limit_s: float | None = None
    request_id: str = field(default_factory=new_request_id)
    arrived: float = field(default_factory=time.monotonic, compare=False)
    #: Keep only the last this-many tokens of the request's text (TGI's ``truncate``; images are kept whole).
    truncate: int | None = None

    @property
    def images(self) -> tuple[ImageInput, ...]:
        return tuple(img for m in self.messages for img in m.images)

    @property
    def deadline(self) -> float | None:
        """When the budget ends, on ``time.monotonic()``'s clock; ``None`` without a budget."""
        return None if self.time_limit_s is None else self.arrived + self.time_limit_s


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. ``cached_tokens`` of the prompt were reused from the prefix cache, not evaluated again;
    ``image_tokens`` of the prompt are the images' embeddings."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    image_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        details = {"cached_tokens": self.cached_tokens, "image_tokens": self.image_tokens}
        if any(details.values()):
            out["prompt_tokens_details"] = {k: v for k, v in details.items() if v}
        return out


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds spent encoding images, evaluating the prompt (image embeddings included) and generating."""

    image_encode_ms: float = 0.0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "image_encode_ms": round(self.image_encode_ms, 3),
            "prompt_ms": round(self.prompt_ms, 3),
            "generate_ms": round(self.generate_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its text, bytes and id, its log-probability under the model (the softmax of the
    logits it was sampled from), and the most likely alternatives at that position when they were asked for."""

    token: str
    logprob: float
    data: bytes = b""
    id: int = -1
    top: tuple[TokenLogprob, ...] = ()

    def as_dict(self, *, top: bool = True) -> dict[str, Any]:
        """OpenAI's shape: ``token``, ``logprob``, ``bytes`` (and ``top_logprobs``)."""
        data: dict[str, Any] = {"token": self.token, "logprob": round(self.logprob, 6), "bytes": list(self.data)}
        if top:
            data["top_logprobs"] = [t.as_dict(top=False) for t in self.top]
        return data


def confidence(logprobs: tuple[TokenLogprob, ...] | None) -> float | None:
    """The geometric mean of the tokens' probabilities (``exp`` of the mean log-probability), in [0, 1]."""
    if not logprobs:
        return None
    return round(math.exp(sum(t.logprob for t in logprobs) / len(logprobs)), 6)


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """What the model said: the text, why it stopped (``stop``, ``length``, ``time_limit``, ``cancelled``), the
    tokens it took and where the time went. The engine, the server's answers and every client return this."""


    text: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    model: str
    #: Follow-up requests that continued this answer past time limits (a client's stitched answer).
    continuations: int = 0
    #: Each generated token's log-probability, when the request asked for them (``SamplingParams.logprobs``).
    logprobs: tuple[TokenLogprob, ...] | None = None

    @property
    def confidence(self) -> float | None:
        """How sure the model was of its answer: the geometric mean of its tokens' probabilities (with logprobs)."""
        return confidence(self.logprobs)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the shape of the server's answer fields)."""
        data: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.as_dict(),
            "timings": self.timings.as_dict(),
            "model": self.model,
        }
        if self.continuations:
            data["continuations"] = self.continuations
        if self.logprobs is not None:
            data["confidence"] = self.confidence
        return data
