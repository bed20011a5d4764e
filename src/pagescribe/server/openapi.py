"""The OpenAPI 3.1 document for the JSON routes, generated from the same pydantic models that parse requests.

Responses are built as plain dicts by the wire modules; the models below only describe them, and a test
checks real answers against this description so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

import pagescribe
from pagescribe.wire.openai import ChatCompletionRequest
from pagescribe.wire.sagemaker import DialogBatchRequest
from pagescribe.wire.tgi import TgiRequest

_REF = "#/components/schemas/{model}"


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0  # reused from the prefix cache
    image_tokens: int = 0  # the images' embeddings


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class Timings(BaseModel):
    image_encode_ms: float
    prompt_ms: float
    generate_ms: float


class Generation(BaseModel):
    role: Literal["assistant"]
    content: str


class DialogAnswer(BaseModel):
    """One dialog's answer in format A."""

    generation: Generation
    generated_text: str
    finish_reason: Literal["stop", "length", "time_limit", "cancelled"]
    usage: Usage
    model: str
    timings: Timings
    logprobs: list[dict[str, Any]] | None = None
    confidence: float | None = None


class TgiDetails(BaseModel):
    finish_reason: Literal["eos_token", "length", "stop_sequence"]
    generated_tokens: int
    seed: int | None
    prefill: list[dict[str, Any]]
    tokens: list[dict[str, Any]]
    top_tokens: list[list[dict[str, Any]]] | None = None


class TgiAnswer(BaseModel):
    """Format C's answer, TGI's: the text (and the details when asked), nothing else."""

    model_config = ConfigDict(extra="forbid")

    generated_text: str
    details: TgiDetails | None = None


class ChoiceMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: ChoiceMessage
    logprobs: dict[str, Any] | None = None
    finish_reason: str
    stop_reason: str


class ChatCompletion(BaseModel):
    """An OpenAI ``chat.completion``."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    timings: Timings


class ErrorDetail(BaseModel):
    type: str
    message: str
    param: str | None
    code: int | None = None


class ErrorBody(BaseModel):
    """Every error: ``{"error": {...}}`` (``code`` only on ``/v1``)."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["loading", "ready", "failed", "stopping"]
    model: str | None = None
    reason: str | None = None


class ExecutionParameters(BaseModel):
    MaxConcurrentTransforms: int
    BatchStrategy: Literal["MULTI_RECORD", "SINGLE_RECORD"]
    MaxPayloadInMB: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


_RESPONSE_MODELS: list[type[BaseModel]] = [
    DialogAnswer,
    TgiAnswer,
    ChatCompletion,
    ErrorBody,
    Health,
    ExecutionParameters,
    ModelList,
    ModelCard,
]


def build_openapi() -> dict[str, Any]:
    """The document served at ``/openapi.json``."""
    inputs = [(m, "validation") for m in (DialogBatchRequest, TgiRequest, ChatCompletionRequest)]
    outputs = [(m, "serialization") for m in _RESPONSE_MODELS]
    _, top = models_json_schema([*inputs, *outputs], ref_template=_REF)  # type: ignore[list-item]
    return {
        "openapi": "3.1.0",
        "info": {"title": "pagescribe", "version": pagescribe.__version__},
        "paths": _paths(),
        "components": {"schemas": top.get("$defs", {})},
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "invalid request",
        401: "missing or wrong API key (only when the server is given one)",
        413: "body or image too large",
        415: "unsupported content type",
        500: "internal error",
        503: "model not ready or queue full (see Retry-After)",
    }
    return {str(s): _json(_ref("ErrorBody"), text[s]) for s in statuses}


def _paths() -> dict[str, Any]:
    return {**_service_paths(), **_generation_paths()}


def _service_paths() -> dict[str, Any]:
    return {
        "/ping": {
            "get": {
                "summary": "Health: 200 when the model serves",
                "responses": {
                    "200": _json(_ref("Health"), "ready"),
                    "503": _json(_ref("Health"), "loading or failed"),
                },
            }
        },
        "/execution-parameters": {
            "get": {
                "summary": "Batch transform settings",
                "responses": {"200": _json(_ref("ExecutionParameters"), "parameters")},
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The loaded model",
                "responses": {"200": _json(_ref("ModelList"), "models"), **_errors(401)},
            }
        },
        "/v1/models/{model_id}": {
            "get": {
                "summary": "The loaded model by its id (404 for any other)",
                "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json(_ref("ModelCard"), "the model"),
                    "404": _json(_ref("ErrorBody"), "no such model"),
                    **_errors(401),
                },
            }
        },
    }


#: One server-sent event of a streamed chat completion: a JSON chunk (or error envelope), or the final [DONE].
_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "anyOf": [
                {"const": "[DONE]"},
                {
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "type": "object",
                        "anyOf": [{"required": ["choices"]}, {"required": ["token"]}, {"required": ["error"]}],
                    },
                },
            ],
        }
    },
}


def _generation_paths() -> dict[str, Any]:
    text = {"schema": {"type": "string"}}
    sse = {"schema": _SSE_EVENT}
    invocation = {
        "oneOf": [
            {"type": "array", "items": _ref("DialogAnswer")},
            {"type": "array", "items": _ref("TgiAnswer")},
            _ref("ChatCompletion"),
        ]
    }
    a_or_b = {"oneOf": [_ref("DialogBatchRequest"), _ref("TgiRequest"), _ref("ChatCompletionRequest")]}
    return {
        "/invocations": {
            "post": {
                "summary": "Dialog batch, TGI request, OpenAI chat completion, or a JSON Lines batch of them",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": a_or_b}, "application/jsonlines": text},
                },
                "responses": {
                    "200": {
                        "description": "the answer",
                        "content": {
                            "application/json": {"schema": invocation},
                            "application/jsonlines": text,
                            "text/event-stream": sse,
                        },
                    },
                    **_errors(400, 401, 413, 415, 500, 503),
                },
            }
        },
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI chat completions",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ChatCompletionRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "the completion",
                        "content": {
                            "application/json": {"schema": _ref("ChatCompletion")},
                            "text/event-stream": sse,
                        },
                    },
                    **_errors(400, 401, 413, 415, 500, 503),
                },
            }
        },
    }
