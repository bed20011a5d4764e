"""Our AWS event-stream frames, read back by botocore's own decoder and its ResponseStream parser."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.eventstream import EventStream, EventStreamBuffer, EventStreamError

from pagescribe.wire import eventstream
from pagescribe.wire.jsonlines import encode_line, split_records


def decode(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


def test_payload_part_headers_and_bytes_survive_botocore() -> None:
    [(headers, payload)] = decode(b"".join(eventstream.payload_parts(b'{"token": {"text": "hi"}}\n')))
    assert headers == {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert payload == b'{"token": {"text": "hi"}}\n'


def test_big_payloads_are_split_and_rejoin_exactly() -> None:
    data = bytes(range(256)) * 4000  # ~1 MB, over MAX_PART_BYTES
    frames = list(eventstream.payload_parts(data))
    assert len(frames) > 1
    assert b"".join(payload for _, payload in decode(b"".join(frames))) == data


class _Raw:
    """The minimal raw stream botocore's EventStream reads from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self) -> list[bytes]:
        return [self._data[i : i + 7] for i in range(0, len(self._data), 7)]  # odd chunking on purpose

    def close(self) -> None:
        pass


def _response_stream(data: bytes) -> EventStream:
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpointWithResponseStream").output_shape.members["Body"]
    from botocore.parsers import EventStreamJSONParser

    return EventStream(_Raw(data), shape, EventStreamJSONParser(), "InvokeEndpointWithResponseStream")


def test_the_sagemaker_runtime_parser_yields_payload_parts_then_raises_model_stream_error() -> None:
    error = json.dumps({"error": {"type": "server_error", "message": "internal error", "param": None}})
    data = b"".join(eventstream.payload_parts(b"part one ")) + b"".join(eventstream.payload_parts(b"part two"))
    data += eventstream.model_stream_error(error, error_code="server_error")
    events = iter(_response_stream(data))
    assert next(events) == {"PayloadPart": {"Bytes": b"part one "}}
    assert next(events) == {"PayloadPart": {"Bytes": b"part two"}}
    with pytest.raises(EventStreamError) as info:
        next(events)
    assert info.value.response["Error"]["Code"] == "ModelStreamError"
    assert "internal error" in info.value.response["Error"]["Message"]


def test_json_lines_split_and_encode() -> None:
    assert split_records(b'{"a":1}\r\n\n{"b":2}\n') == [b'{"a":1}\r', b'{"b":2}']
    assert encode_line({"t": "é"}) == '{"t":"é"}\n'.encode()
