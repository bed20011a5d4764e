"""JSON Lines bodies, as SageMaker batch transform sends them (``SplitType=Line``, ``MultiRecord``).

Each non-blank input line is one record (a dialog batch or an OpenAI chat body); the answer has exactly one
line per record, in order, a failed record becoming an ``{"error": {...}}`` line instead of failing the batch.
"""

from __future__ import annotations

import json
from typing import Any

CONTENT_TYPES = frozenset(
    {"application/jsonlines", "application/x-jsonlines", "application/jsonl", "application/x-ndjson"}
)
MEDIA_TYPE = "application/jsonlines"


def split_records(body: bytes) -> list[bytes]:
    """The records of a JSON Lines body; blank lines (a trailing newline, CRLF endings) are not records."""
    return [line for line in body.split(b"\n") if line.strip()]


def encode_line(obj: Any) -> bytes:
    """One compact JSON line, newline-terminated; non-ASCII kept as UTF-8."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
