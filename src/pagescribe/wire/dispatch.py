"""``/invocations`` accepts several request shapes; this picks the one a body has, or says what was expected.

The choice is by shape (the top-level key that only one format has), never by trying every parser and
keeping whichever does not fail, so the 400 for a malformed request speaks about the format the caller meant.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from pydantic import ValidationError

from pagescribe.errors import InvalidRequest
from pagescribe.types import GenerationRequest
from pagescribe.wire import openai, sagemaker, tgi
from pagescribe.wire.errors import from_validation
from pagescribe.wire.media import MediaPolicy
from pagescribe.wire.openai import ChatCompletionRequest
from pagescribe.wire.sagemaker import DialogBatchRequest
from pagescribe.wire.tgi import TgiRequest

log = logging.getLogger("pagescribe.wire")

WireRequest = DialogBatchRequest | ChatCompletionRequest | TgiRequest
M = TypeVar("M", DialogBatchRequest, ChatCompletionRequest, TgiRequest)

EXPECTED = (
    'expected a dialog batch {"inputs": [[{"role": ..., "content": ..., "image": ...}]], '
    '"parameters": {...}}, a TGI request {"inputs": "<text>", "parameters": {...}} '
    'or an OpenAI chat completion {"messages": [...]}'
)

#: Keys that known clients put into request bodies although they are about the transport, not the generation:
#: LiteLLM's ``sagemaker/`` and ``sagemaker_chat/`` routes forward their own arguments (the endpoint URL, AWS
#: credentials and region, the inference component). None can change what the model says, so they are dropped with
#: a log line naming them (never their values); every other unknown field is still a 400.
TRANSPORT_KEYS = frozenset(
    {
        "sagemaker_base_url",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region_name",
        "aws_profile_name",
        "aws_role_name",
        "aws_session_name",
        "aws_web_identity_token",
        "aws_sts_endpoint",
        "aws_bedrock_runtime_endpoint",
        "model_id",
    }
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
    data = without_transport_keys(data)
    if isinstance(data, dict) and isinstance(data.get("inputs"), str):
        return validate(TgiRequest, data)
    if isinstance(data, dict) and "inputs" in data:
        return validate(DialogBatchRequest, data)
    if isinstance(data, dict) and "messages" in data:
        return validate(ChatCompletionRequest, data)
    got = "an object with keys " + ", ".join(sorted(data)[:8]) if isinstance(data, dict) else _kind(data)
    raise InvalidRequest(f"{EXPECTED}; got {got or 'an empty object'}")


def to_requests(wire: WireRequest, *, policy: MediaPolicy, request_id: str) -> list[GenerationRequest]:
    """The ``GenerationRequest``s a request model stands for (one per dialog in format A, else one); images are
    decoded and checked here, in the caller's thread."""
    if isinstance(wire, DialogBatchRequest):
        return sagemaker.to_requests(wire, policy=policy, request_id=request_id)
    if isinstance(wire, TgiRequest):
        return [tgi.to_request(wire, policy=policy, request_id=request_id)]
    return [openai.to_request(wire, policy=policy, request_id=request_id)]


def parse_chat(data: Any) -> ChatCompletionRequest:
    """The body of ``/v1/chat/completions``."""
    if not isinstance(data, dict):
        raise InvalidRequest(f'expected an OpenAI chat completion {{"messages": [...]}}; got {_kind(data)}')
    return validate(ChatCompletionRequest, without_transport_keys(data))


def without_transport_keys(data: Any) -> Any:
    """``data`` without ``TRANSPORT_KEYS`` at the top level and in ``parameters`` (logged when there were any)."""
    if not isinstance(data, dict):
        return data
    dropped = sorted(k for k in data if k in TRANSPORT_KEYS)
    cleaned = {k: v for k, v in data.items() if k not in TRANSPORT_KEYS}
    parameters = cleaned.get("parameters")
    if isinstance(parameters, dict):
        dropped += sorted(f"parameters.{k}" for k in parameters if k in TRANSPORT_KEYS)
        cleaned["parameters"] = {k: v for k, v in parameters.items() if k not in TRANSPORT_KEYS}
    if dropped:
        log.info("ignored transport keys", extra={"ignored": dropped})
    return cleaned


def validate(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` as ``model``; problems become one 400 naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from exc


def _kind(data: Any) -> str:
    names = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", type(None): "null"}
    return names.get(type(data), "a JSON number")
