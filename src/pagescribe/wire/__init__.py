"""Wire formats: each module translates one protocol to and from the internal types, and nothing else.

``sagemaker`` (format A, the dialog batch), ``openai`` (format B, chat completions), ``jsonlines`` (batch
transform bodies), ``eventstream`` (AWS event-stream framing), ``errors`` (exception -> status table).
"""

from pagescribe.wire.dispatch import WireRequest, parse_chat, parse_invocation, parse_json
from pagescribe.wire.errors import ERROR_TABLE, ErrorKind, error_body, exception_for, kind_of
from pagescribe.wire.media import MediaPolicy

__all__ = [
    "ERROR_TABLE",
    "ErrorKind",
    "MediaPolicy",
    "WireRequest",
    "error_body",
    "exception_for",
    "kind_of",
    "parse_chat",
    "parse_invocation",
    "parse_json",
]
