"""Format-A answers into ``GenerationResult``: the complete JSON list, or the streamed JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, cast, get_args

from pagescribe.errors import EngineError
from pagescribe.types import FinishReason, GenerationResult, Timings, TokenLogprob, Usage
from pagescribe.wire.errors import exception_for

_TIMINGS = ("image_encode_ms", "prompt_ms", "generate_ms")
_FINISH_REASONS: frozenset[str] = frozenset(get_args(FinishReason))


def finish_reason(value: Any) -> FinishReason:
    """The answer's finish reason; one outside pagescribe's vocabulary (another server's) ends a complete text,
    so it counts as a stop."""
    reason = str(value or "stop")
    return cast(FinishReason, reason) if reason in _FINISH_REASONS else "stop"


def result_from_json(data: Any, *, source: str) -> GenerationResult:
    """The first (only) answer of a format-A response list, or a streamed final line."""
    answer = data[0] if isinstance(data, list) and data else data
    if not isinstance(answer, Mapping) or not isinstance(answer.get("generated_text"), str):
        raise EngineError(f"{source} sent an answer without generated_text: {json.dumps(data)[:200]}")
    usage = _mapping(answer.get("usage"))
    timings = _mapping(answer.get("timings"))
    try:
        return GenerationResult(
            text=answer["generated_text"],
            finish_reason=finish_reason(answer.get("finish_reason")),
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                cached_tokens=int(_mapping(usage.get("prompt_tokens_details")).get("cached_tokens", 0)),
                image_tokens=int(_mapping(usage.get("prompt_tokens_details")).get("image_tokens", 0)),
            ),
            timings=Timings(**{key: float(timings.get(key, 0.0)) for key in _TIMINGS}),
            model=str(answer.get("model") or ""),
            logprobs=_logprobs(answer.get("logprobs")),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise EngineError(f"{source} sent an answer with malformed usage, timings or logprobs: {exc}") from exc


def _logprobs(value: Any) -> tuple[TokenLogprob, ...] | None:
    """The answer's ``logprobs`` (OpenAI's token entries), when it has them."""
    if not isinstance(value, list):
        return None
    return tuple(_entry(item) for item in value)


def _entry(item: Mapping[str, Any]) -> TokenLogprob:
    top = tuple(_entry(t) for t in item.get("top_logprobs") or ())
    return TokenLogprob(str(item["token"]), float(item["logprob"]), bytes(item.get("bytes") or ()), top=top)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def result_from_body(body: bytes, *, source: str) -> GenerationResult:
    """A complete (non-streamed) response body."""
    return result_from_json(_json(body, source=source), source=source)


def _json(line: bytes | str, *, source: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        shown = line[:200] if isinstance(line, str) else line[:200].decode("utf-8", "replace")
        raise EngineError(f"{source} sent something that is not JSON: {shown!r}") from exc


class LineDecoder:
    """Streamed format-A lines -> text pieces, then one ``GenerationResult``.

    Lines are ``{"token": {"text": ...}}`` pieces, a final line with ``generated_text``, or an
    ``{"error": {...}}`` line when generation failed after the answer began (raised as its exception).
    ``feed`` takes raw bytes in any chunking (event-stream parts split lines anywhere).
    """

    def __init__(self, *, source: str) -> None:
        self._source = source
        self._buffer = b""
        self.result: GenerationResult | None = None

    def feed(self, data: bytes) -> Iterator[str | GenerationResult]:
        """Decode every complete line in ``data`` (plus what earlier calls left over)."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            yield from self.line(line)

    def finish(self) -> Iterator[str | GenerationResult]:
        """Decode what is left; a stream that ended without its final line is an ``EngineError``."""
        rest, self._buffer = self._buffer, b""
        yield from self.line(rest)
        if self.result is None:
            raise EngineError(f"{self._source} ended the stream before the final answer (connection lost?)")

    def line(self, line: bytes | str) -> Iterator[str | GenerationResult]:
        """Decode one complete line."""
        if not line.strip():
            return
        data = _json(line, source=self._source)
        if not isinstance(data, Mapping):
            raise EngineError(f"{self._source} sent an unexpected stream line: {str(data)[:200]}")
        if isinstance(data.get("error"), Mapping):
            error = data["error"]
            raise exception_for(str(error.get("type")), str(error.get("message")), param=error.get("param"))
        token = data.get("token")
        if isinstance(token, Mapping):
            text = token.get("text")
            if isinstance(text, str) and text:
                yield text
            return
        self.result = result_from_json(data, source=self._source)
        yield self.result
