"""AWS event-stream framing (``application/vnd.amazon.eventstream``) for InvokeEndpointWithResponseStream.

botocore only decodes this format, so the few lines of encoding live here. A message is

    total length (u32) | headers length (u32) | CRC32 of those 8 bytes | headers | payload | CRC32 of the rest

and each header is ``name length (u8) | name | type 7 = string (u8) | value length (u16) | value``.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator

MEDIA_TYPE = "application/vnd.amazon.eventstream"
#: A part's size cap: botocore refuses payloads over 16 MiB, and smaller parts keep memory flat.
MAX_PART_BYTES = 256 * 1024
_STRING = 7


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers."""
    encoded_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded_headers + payload
    return head + struct.pack(">I", zlib.crc32(head))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value


def payload_parts(data: bytes) -> Iterator[bytes]:
    """``data`` as one or more ``PayloadPart`` events (the reader concatenates their ``Bytes``)."""
    for start in range(0, max(len(data), 1), MAX_PART_BYTES):
        yield encode_message(
            {
                ":event-type": "PayloadPart",
                ":content-type": "application/octet-stream",
                ":message-type": "event",
            },
            data[start : start + MAX_PART_BYTES],
        )


def model_stream_error(message: str, *, error_code: str) -> bytes:
    """A ``ModelStreamError`` exception event: boto3 raises ``EventStreamError`` when it reads it."""
    payload = json.dumps({"Message": message, "ErrorCode": error_code}).encode()
    return encode_message(
        {
            ":exception-type": "ModelStreamError",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        payload,
    )
