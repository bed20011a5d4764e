"""Error answers back into the exceptions the server raised, plus the few failures only a client has.

The server decides an error's status and ``type`` with ``pagescribe.wire.errors``; ``parse_error`` reads the
same table backwards, so ``except ImageError`` works alike in process and across the network. A body that is
not pagescribe's envelope (a proxy's HTML page, a gateway's 502) falls back to a class chosen by status.

    PagescribeError
    ├── ServiceUnavailable
    │   ├── Unreachable              no connection to the server or endpoint (refused, DNS, TLS, reset)
    │   └── ResponseTimeout          connected, but no answer within the read timeout
    └── ClientConfigError            the client cannot be set up: no AWS region or credentials, bad profile
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from pagescribe.errors import (
    EngineError,
    InvalidRequest,
    Overloaded,
    PagescribeError,
    PayloadTooLarge,
    RequestError,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from pagescribe.wire.errors import ERROR_TABLE, exception_for

#: Statuses worth another try: throttled, overloaded or not ready, or a proxy that lost its upstream.
#: Not 504: the upstream ran out of time, and sending the same generation again would too.
RETRY_STATUSES = frozenset({429, 502, 503})

# Classes for statuses whose body is not pagescribe's envelope.
_BY_STATUS: dict[int, type[PagescribeError]] = {
    400: InvalidRequest,
    404: InvalidRequest,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: Overloaded,
    502: ServiceUnavailable,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}
_KNOWN_TYPES = frozenset(kind.type for kind in ERROR_TABLE.values())


class Unreachable(ServiceUnavailable):
    """No connection could be made (or kept) to the server or endpoint."""


class ResponseTimeout(ServiceUnavailable):
    """The server accepted the request but sent no answer within the read timeout."""


class ClientConfigError(PagescribeError):
    """The client cannot be set up as asked (AWS region, credentials or profile missing or wrong)."""


def parse_error(
    status: int,
    body: bytes | str | None,
    *,
    headers: Mapping[str, str] | None = None,
    source: str = "the server",
) -> PagescribeError:
    """The exception an error answer stands for: the server's own, with its message verbatim.

    ``body`` is the response body (pagescribe's ``{"error": {"type", "message", "param"}}`` or anything
    else); ``headers`` may carry ``Retry-After``, which lands on ``ServiceUnavailable.retry_after_s``.
    """
    error = from_envelope(body)
    if error is None:
        # Not ours (or a type this client does not know): keep a message if the body has one, choose by status.
        envelope = _envelope(body)
        message = envelope[1] if envelope is not None else _describe_body(status, body, source=source)
        error = _class_for_status(status)(message)
    wait = retry_after_s(headers)
    if wait is not None and isinstance(error, ServiceUnavailable):
        error.retry_after_s = wait
    return error


def from_envelope(body: bytes | str | None) -> PagescribeError | None:
    """The exception a pagescribe error envelope names, or ``None`` when ``body`` is not one."""
    envelope = _envelope(body)
    if envelope is None or envelope[0] not in _KNOWN_TYPES:
        return None
    return exception_for(envelope[0], envelope[1], param=envelope[2])


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` when absent or bad."""
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _envelope(body: bytes | str | None) -> tuple[str, str, str | None] | None:
    """``(type, message, param)`` from an error envelope, or ``None`` when the body is not one."""
    if not body:
        return None
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    param = error.get("param")
    return str(error.get("type") or ""), error["message"], param if isinstance(param, str) else None


def _class_for_status(status: int) -> type[PagescribeError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return RequestError if 400 <= status < 500 else EngineError


def _describe_body(status: int, body: bytes | str | None, *, source: str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    text = " ".join(text.split())[:300]
    return f"{source} answered {status}" + (f": {text}" if text else " with an empty body")
