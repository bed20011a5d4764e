"""Exception class -> (HTTP status, error type), and the JSON bodies errors travel in.

The one mapping table for the whole service: the server uses it to answer, the client uses it to turn an
answer back into the same exception. Lookup walks the exception's MRO, so a subclass inherits its parent's
row unless it has its own; a status is never chosen by matching message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pagescribe.errors import (
    ContextOverflow,
    EngineError,
    ImageError,
    ImageTooLarge,
    InvalidRequest,
    ModelError,
    NotReady,
    Overloaded,
    PagescribeError,
    PayloadTooLarge,
    RequestError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)

INTERNAL_ERROR_MESSAGE = "internal error"


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """The status and the ``type`` string one exception class answers with."""

    status: int
    type: str


#: The mapping table. Order does not matter: the most specific class in the exception's MRO wins.
ERROR_TABLE: dict[type[BaseException], ErrorKind] = {
    RequestError: ErrorKind(400, "invalid_request_error"),
    InvalidRequest: ErrorKind(400, "invalid_request_error"),
    ImageError: ErrorKind(400, "invalid_image"),
    ContextOverflow: ErrorKind(400, "context_length_exceeded"),
    PayloadTooLarge: ErrorKind(413, "payload_too_large"),
    ImageTooLarge: ErrorKind(413, "image_too_large"),
    UnsupportedMediaType: ErrorKind(415, "unsupported_media_type"),
    Unauthorized: ErrorKind(401, "authentication_error"),
    ServiceUnavailable: ErrorKind(503, "service_unavailable"),
    NotReady: ErrorKind(503, "model_not_ready"),
    # The queue in front of the engine is full: 503 + Retry-After, which SageMaker and every HTTP client
    # treat as "try again shortly" (the choice over 429, which reads as a per-caller quota).
    Overloaded: ErrorKind(503, "overloaded"),
    ModelError: ErrorKind(503, "model_unavailable"),
    EngineError: ErrorKind(500, "server_error"),
}
INTERNAL = ErrorKind(500, "server_error")

# Reverse lookup for clients: the exception class a ``type`` string stands for.
_TYPE_TO_CLASS: dict[str, type[PagescribeError]] = {
    kind.type: cls for cls, kind in ERROR_TABLE.items() if issubclass(cls, PagescribeError) and cls is not RequestError
}


def kind_of(exc: BaseException) -> ErrorKind:
    """The table row for ``exc``; anything not in the tree is a defect (500)."""
    for cls in type(exc).__mro__:
        kind = ERROR_TABLE.get(cls)
        if kind is not None:
            return kind
    return INTERNAL


def exception_for(type_: str, message: str, *, param: str | None = None) -> PagescribeError:
    """The exception a received error body stands for (the inverse of the table, for clients)."""
    cls = _TYPE_TO_CLASS.get(type_, EngineError)
    return cls(message, param=param)


def public_message(exc: BaseException) -> str:
    """What the caller may read: our own message, or "internal error" for defects and engine failures."""
    if isinstance(exc, PagescribeError) and kind_of(exc).status != 500:
        return exc.message
    return INTERNAL_ERROR_MESSAGE


def error_body(exc: BaseException, *, openai: bool = False) -> dict[str, Any]:
    """``{"error": {"type", "message", "param"}}``; on ``/v1`` also ``code``, as OpenAI clients expect."""
    kind = kind_of(exc)
    param = exc.param if isinstance(exc, PagescribeError) else None
    body: dict[str, Any] = {"type": kind.type, "message": public_message(exc), "param": param}
    if openai:
        body["code"] = kind.status
    return {"error": body}


def retry_after(exc: BaseException) -> int | None:
    """Seconds for a ``Retry-After`` header, for errors that ask the caller to come back."""
    if isinstance(exc, ServiceUnavailable):
        return max(1, round(exc.retry_after_s))
    if isinstance(exc, ModelError):
        return 10
    return None


def error_headers(exc: BaseException) -> dict[str, str]:
    seconds = retry_after(exc)
    return {} if seconds is None else {"Retry-After": str(seconds)}


def from_validation(err: ValidationError, *, prefix: str = "") -> InvalidRequest:
    """A pydantic ``ValidationError`` as one readable 400 that names the offending fields.

    Unknown fields are listed together ("unknown parameter(s): a, b"); otherwise the most specific problems
    (the deepest locations, which is where a union's right branch failed) come first.
    """
    problems = err.errors(include_url=False, include_input=False)
    unknown = [_location(p["loc"], prefix) for p in problems if p["type"] == "extra_forbidden"]
    if unknown:
        return InvalidRequest(f"unknown parameter(s): {', '.join(unknown)}", param=unknown[0])
    located = sorted(((_path(p["loc"]), p["msg"]) for p in problems), key=lambda lm: -len(lm[0]))
    shown = [f"{_join(path, prefix) or '(body)'}: {msg}" for path, msg in located[:3]]
    more = f" (and {len(located) - 3} more)" if len(located) > 3 else ""
    return InvalidRequest("; ".join(shown) + more, param=_join(located[0][0], prefix) or None)


def _location(loc: tuple[int | str, ...], prefix: str) -> str:
    return _join(_path(loc), prefix)


def _path(loc: tuple[int | str, ...]) -> list[int | str]:
    """``loc`` without pydantic's union-branch tags ("str", "list[str]", "constrained-str"), and without the
    repeated name a tagged union adds ("image_url.image_url")."""
    path: list[int | str] = []
    for item in loc:
        if isinstance(item, str) and _is_branch_tag(item):
            continue
        if path and item == path[-1] and isinstance(item, str):
            continue
        path.append(item)
    return path


def _join(path: list[int | str], prefix: str) -> str:
    text = prefix
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else item)
    return text


def _is_branch_tag(item: str) -> bool:
    # Field names are identifiers; branch tags carry brackets or hyphens, or are bare type names.
    return "[" in item or "-" in item or item in {"str", "int", "float", "bool", "list", "dict", "none"}
