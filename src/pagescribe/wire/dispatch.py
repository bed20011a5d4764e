"""``/invocations`` accepts several request shapes; this picks the one a body has, or says what was expected.

The choice is by shape (the top-level key that only one format has), never by trying every parser and
keeping whichever does not fail, so the 400 for a malformed request speaks about the format the caller meant.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import ValidationError

from pagescribe.errors import InvalidRequest
from pagescribe.wire.errors import from_validation
from pagescribe.wire.openai import ChatCompletionRequest
from pagescribe.wire.sagemaker import DialogBatchRequest

WireRequest = DialogBatchRequest | ChatCompletionRequest
M = TypeVar("M", DialogBatchRequest, ChatCompletionRequest)

EXPECTED = (
    'expected a dialog batch {"inputs": [[{"role": ..., "content": ..., "image": ...}]], '
    '"parameters": {...}} or an OpenAI chat completion {"messages": [...]}'
)


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; malformed JSON or non-UTF-8 bytes are a 400 saying where it broke."""
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise InvalidRequest("malformed JSON: nested too deeply") from exc


def parse_invocation(data: Any) -> WireRequest:
    """The request model for a decoded ``/invocations`` body."""
    if isinstance(data, dict) and "inputs" in data:
        return validate(DialogBatchRequest, data)
    if isinstance(data, dict) and "messages" in data:
        return validate(ChatCompletionRequest, data)
    got = "an object with keys " + ", ".join(sorted(data)[:8]) if isinstance(data, dict) else _kind(data)
    raise InvalidRequest(f"{EXPECTED}; got {got or 'an empty object'}")


def parse_chat(data: Any) -> ChatCompletionRequest:
    """The body of ``/v1/chat/completions``."""
    if not isinstance(data, dict):
        raise InvalidRequest(f'expected an OpenAI chat completion {{"messages": [...]}}; got {_kind(data)}')
    return validate(ChatCompletionRequest, data)


def validate(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` as ``model``; problems become one 400 naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from exc


def _kind(data: Any) -> str:
    names = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", type(None): "null"}
    return names.get(type(data), "a JSON number")
