"""An answer cut by a time limit is continued, not accepted: the same request again, with the text so far as the
assistant's prefix, until the answer stops, reaches the caller's ``max_tokens``, or ``max_continuations`` ran out.

A server renders a trailing assistant message as the beginning of the answer to go on from (no end-of-turn token),
and its prefix cache keeps what the cut request evaluated, so a follow-up evaluates only what is new; greedy
output continued this way is the output of one uninterrupted request. SageMaker ends a real-time request at 60 s,
and a page's answer of 1,024 tokens from a 7B model on CPU takes about two minutes: this is how it is finished.
The same state drives the blocking and the asyncio clients.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from pagescribe.types import (
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Message,
    TextPart,
    Timings,
    TokenLogprob,
    Usage,
)

#: Follow-up requests one answer may take before its time-limited text is returned as it is.
DEFAULT_MAX_CONTINUATIONS = 32


@dataclass
class Continuation:
    """The pieces of one answer so far; ``next_request`` is the follow-up to send, or ``None`` when it is done."""

    request: GenerationRequest
    max_continuations: int = DEFAULT_MAX_CONTINUATIONS
    results: list[GenerationResult] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.results)

    @property
    def generated(self) -> int:
        return sum(r.usage.completion_tokens for r in self.results)

    def add(self, result: GenerationResult) -> None:
        self.results.append(result)

    def next_request(self) -> GenerationRequest | None:
        """The follow-up for a time-limited last piece, or ``None`` when the answer is complete."""
        last = self.results[-1]
        left = self.request.params.max_tokens - self.generated
        if last.finish_reason != "time_limit" or left <= 0 or len(self.results) > self.max_continuations:
            return None
        if self._stop_index() is not None:  # a stop string the cut had split: the answer is complete
            return None
        messages = self.request.messages
        prefix = ""
        if messages[-1].role == "assistant":  # the caller's own answer prefix: the text so far goes on from it
            prefix, messages = messages[-1].text, messages[:-1]
        params = self.request.params
        given = None if params.given is None else params.given | {"max_tokens"}
        return dataclasses.replace(
            self.request,
            messages=(*messages, Message("assistant", (TextPart(prefix + self.text),))),
            params=dataclasses.replace(params, max_tokens=left, given=given),
            arrived=time.monotonic(),
        )

    def result(self) -> GenerationResult:
        """The answer stitched from its pieces: the first piece's prompt, every piece's tokens and time."""
        first, last = self.results[0], self.results[-1]
        text = self.text
        finish: FinishReason = last.finish_reason
        if self.generated >= self.request.params.max_tokens and finish == "time_limit":
            finish = "length"
        cut = self._stop_index()
        if cut is not None:
            text, finish = text[:cut], "stop"
        return GenerationResult(
            text=text,
            finish_reason=finish,
            usage=Usage(
                prompt_tokens=first.usage.prompt_tokens,
                completion_tokens=self.generated,
                cached_tokens=first.usage.cached_tokens,
                image_tokens=first.usage.image_tokens,
            ),
            timings=Timings(
                image_encode_ms=sum(r.timings.image_encode_ms for r in self.results),
                prompt_ms=sum(r.timings.prompt_ms for r in self.results),
                generate_ms=sum(r.timings.generate_ms for r in self.results),
            ),
            model=last.model or first.model,
            continuations=len(self.results) - 1,
            logprobs=self._logprobs(),
        )

    def _logprobs(self) -> tuple[TokenLogprob, ...] | None:
        if all(r.logprobs is None for r in self.results):
            return None
        return tuple(t for r in self.results for t in r.logprobs or ())

    def _stop_index(self) -> int | None:
        """Where a stop string starts in the stitched text, if one spans a cut (each piece checked its own)."""
        if len(self.results) < 2:
            return None
        text = self.text
        found = [i for i in (text.find(s) for s in self.request.params.stop if s) if i >= 0]
        return min(found) if found else None
