"""A llama.cpp sampler chain built from ``SamplingParams``: penalties, grammar, then greedy or top-k/p/min-p."""

from __future__ import annotations

import json
import random
from typing import Any

from pagescribe.errors import InvalidRequest
from pagescribe.types import SamplingParams

PENALTY_LAST_N = 64


class Sampler:
    """Owns one native sampler chain; ``close`` frees it (the slot that uses it closes it when its request ends)."""

    def __init__(self, model: Any, vocab: Any, params: SamplingParams) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        try:
            self._build(model, vocab, params)
        except BaseException:
            llama_cpp.llama_sampler_free(self.chain)
            raise

    def _add(self, sampler: Any) -> None:
        self._lib.llama_sampler_chain_add(self.chain, sampler)

    def _build(self, model: Any, vocab: Any, params: SamplingParams) -> None:
        lib = self._lib
        grammar = grammar_for(params.response_format)
        if grammar is not None:
            sampler = lib.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not sampler:
                raise InvalidRequest("response_format: the JSON schema could not be turned into a grammar",
                                     param="response_format")
            self._add(sampler)
        if params.temperature > 0:
            # top-k first keeps the penalty pass off the full vocabulary (llama.cpp's advice)
            self._add(lib.llama_sampler_init_top_k(params.top_k if params.top_k > 0 else 0))
        if params.repeat_penalty != 1.0 or params.frequency_penalty or params.presence_penalty:
            self._add(lib.llama_sampler_init_penalties(
                lib.llama_vocab_n_tokens(vocab), PENALTY_LAST_N, params.repeat_penalty,
                params.frequency_penalty, params.presence_penalty,
            ))
        if params.temperature <= 0:
            self._add(lib.llama_sampler_init_greedy())
            return
        self._add(lib.llama_sampler_init_top_p(params.top_p, 1))
        self._add(lib.llama_sampler_init_min_p(params.min_p, 1))
        self._add(lib.llama_sampler_init_temp(params.temperature))
        seed = params.seed if params.seed is not None else random.SystemRandom().randrange(2**32)
        self._add(lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def sample(self, ctx: Any, index: int = -1) -> int:
        """Pick the next token from the logits at batch ``index`` (and record it for penalties and grammar)."""
        return int(self._lib.llama_sampler_sample(self.chain, ctx, index))

    def close(self) -> None:
        if self.chain is not None:
            self._lib.llama_sampler_free(self.chain)
            self.chain = None


def grammar_for(response_format: dict[str, Any] | None) -> str | None:
    """GBNF for ``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {"schema": ...}}``."""
    if not response_format or response_format.get("type") in (None, "text"):
        return None
    from llama_cpp import llama_grammar

    kind = response_format.get("type")
    if kind == "json_object":
        return str(llama_grammar.JSON_GBNF)
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema", spec) if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema must be an object", param="response_format")
        try:
            return str(llama_grammar.json_schema_to_gbnf(json.dumps(schema)))
        except Exception as exc:  # the converter raises plain Exceptions for unsupported schemas
            raise InvalidRequest(f"response_format: unsupported JSON schema: {exc}",
                                 param="response_format") from exc
    raise InvalidRequest(f"response_format.type {kind!r} is not one of text, json_object, json_schema",
                         param="response_format")
