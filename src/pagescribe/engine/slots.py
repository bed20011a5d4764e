"""One slot = one sequence (a KV stream of its own) in the context, and the request it is serving (if any)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from pagescribe.engine.queue import Job
from pagescribe.engine.sampling import Sampler
from pagescribe.engine.textstream import TextStream
from pagescribe.engine.tokens import ImageKey, Key, TokenizedPrompt, common_prefix, span
from pagescribe.types import FinishReason, GenerationResult, Timings, TokenLogprob, Usage


@dataclass
class Slot:
    seq: int
    cached: list[Key] = field(default_factory=list)  # keys whose KV is in this sequence, in order
    shared: int = 0  # leading keys of ``cached`` that some request reused (worth saving before they go)
    job: Job | None = None
    prompt: TokenizedPrompt | None = None
    phase: Literal["idle", "prompt", "generate"] = "idle"
    cursor: int = 0  # next prompt key to evaluate
    n_past: int = 0  # positions in the KV cache
    n_cached: int = 0  # prompt tokens (KV cells) reused from the prefix cache
    image_done: int = 0  # rows of the current image already decoded
    image_embd: npt.NDArray[np.float32] | None = None
    sampler: Sampler | None = None
    text: TextStream | None = None
    next_token: int = -1
    out_index: int = -1
    n_generated: int = 0
    generated: list[int] = field(default_factory=list)  # tokens generated for the request, in order
    logprobs: list[TokenLogprob] = field(default_factory=list)  # theirs, when the request asked for them
    complete: int = 0  # leading generated tokens that decode to whole characters
    steps: int = 0  # batch steps the request took part in (a deadline stops it only after the first)
    partial: tuple[ImageKey, int] | None = None  # an image a cut request left half evaluated here (key, rows)
    started: float = 0.0
    first_token: float = 0.0
    encode_ms: float = 0.0

    @property
    def active(self) -> bool:
        return self.job is not None

    def committed(self) -> list[Key]:
        """Keys whose KV is complete: what another request may share."""
        return self.cached

    def prompt_keys(self) -> list[Key]:
        assert self.prompt is not None
        return self.prompt.keys

    def next_key(self) -> Key:
        return self.prompt_keys()[self.cursor]

    def text_run(self, limit: int) -> list[int]:
        """Up to ``limit`` text tokens from the cursor, stopping at an image."""
        keys = self.prompt_keys()
        out: list[int] = []
        i = self.cursor
        while i < len(keys) and len(out) < limit:
            key = keys[i]
            if isinstance(key, ImageKey):
                break
            out.append(key)
            i += 1
        return out

    def n_cells(self) -> int:
        """KV cells the slot's sequence holds: positions, plus what images take beyond their positions (M-RoPE)."""
        assert self.prompt is not None
        return self.n_past + self.prompt.n_cells - self.prompt.n_positions

    def prompt_done(self) -> bool:
        return self.cursor >= len(self.prompt_keys())

    def prompt_continues(self) -> bool:
        """Whether the prompt ends inside the answer (a continued one), so generated text goes on from it."""
        return self.prompt is not None and self.prompt.continues

    def result(self, finish: FinishReason, model_id: str) -> GenerationResult:
        now = time.perf_counter()
        first = self.first_token or now
        assert self.prompt is not None and self.text is not None
        wanted = self.job is not None and self.job.request.params.logprobs is not None
        return GenerationResult(
            text=self.text.text,
            finish_reason=finish,
            usage=Usage(
                prompt_tokens=self.prompt.n_cells,
                completion_tokens=self.n_generated,
                cached_tokens=self.n_cached,
                image_tokens=self.prompt.n_image_tokens,
            ),
            timings=Timings(
                image_encode_ms=self.encode_ms,
                prompt_ms=max(0.0, (first - self.started) * 1000 - self.encode_ms),
                generate_ms=(now - first) * 1000 if self.first_token else 0.0,
            ),
            model=model_id,
            logprobs=emitted(self.logprobs, self.text.text) if wanted else None,
        )


def emitted(logprobs: list[TokenLogprob], text: str) -> tuple[TokenLogprob, ...]:
    """The tokens whose bytes made ``text``: a stop string's tokens and an incomplete character's are left out."""
    budget = len(text.encode("utf-8"))
    kept: list[TokenLogprob] = []
    for entry in logprobs:
        budget -= len(entry.data)
        if budget < 0:
            break
        kept.append(entry)
    return tuple(kept)


def best_prefix(slots: list[Slot], keys: list[Key]) -> tuple[Slot | None, int, int]:
    """The slot whose cached keys share the longest prefix with ``keys``: (slot, n_keys, n_positions).

    At least one key of ``keys`` is always left to evaluate, since the last prompt token must produce logits.
    """
    best: Slot | None = None
    best_n = 0
    for slot in slots:
        n = min(common_prefix(slot.committed(), keys), len(keys) - 1)
        if n > best_n:
            best, best_n = slot, n
    return best, best_n, sum(span(k) for k in keys[:best_n])
