"""Property tests of the request parsers (``wire.dispatch``, ``wire.sagemaker``, ``wire.openai``).

Whatever JSON arrives, parsing and translation end in one of two ways: requests for the engine, or a
``RequestError`` that maps to a 4xx with a message. Never another exception (which would be a 500), never a
silent change of what the caller asked for.
"""

from __future__ import annotations

import base64
import io
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pagescribe.errors import RequestError
from pagescribe.images import ImageLimits
from pagescribe.types import GenerationRequest, ImagePart, TextPart
from pagescribe.wire import sagemaker
from pagescribe.wire.dispatch import parse_chat, parse_invocation, parse_json, to_requests
from pagescribe.wire.errors import kind_of
from pagescribe.wire.jsonlines import split_records
from pagescribe.wire.media import MediaPolicy, decode_inline

POLICY = MediaPolicy(limits=ImageLimits(max_bytes=64 * 1024, max_pixels=10_000, max_side=64), max_images=24)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _png(size: tuple[int, int], mode: str = "RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


GOOD_IMAGES = [_png((3, 2)), "data:image/png;base64," + _png((1, 1), "L"), _png((5, 7), "RGBA").rstrip("=")]
BAD_IMAGES = [
    "", "@@@", "data:text/plain;base64,aGk=", "data:image/png,", "http://169.254.169.254/", "file:///etc/passwd",
    "ftp://x/y.png", _png((200, 200)), base64.b64encode(b"GIF89a" + b"\0" * 20).decode(),
    "data:image/svg+xml;base64,PA==",
]  # fmt: skip
PARAMETERS = [
    "max_tokens", "max_new_tokens", "temperature", "top_p", "top_k", "min_p", "repeat_penalty",
    "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "stop", "stream", "response_format",
    "time_limit_s", "best_of",
]  # fmt: skip

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
image_texts = st.sampled_from(GOOD_IMAGES + BAD_IMAGES) | st.text(max_size=20)
content_texts = st.text(max_size=30) | st.sampled_from(
    ["<ImageHere>", "a <ImageHere> b <ImageHere>", "<Img><ImageHere></Img>x"]
)
# Valid Unicode (no lone surrogates) without markers: text that must reach the engine exactly as sent.
utf8_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=15).filter(lambda t: "<" not in t)
parameters = st.dictionaries(st.sampled_from(PARAMETERS), json_values, max_size=4)


def _dialog_message() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "robot"]), "content": content_texts | json_values},
        optional={"image": image_texts | json_values, "images": st.lists(image_texts, max_size=3)},
    )


def _chat_message() -> st.SearchStrategy[dict[str, Any]]:
    part = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": content_texts}),
        st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": image_texts})}),
        st.dictionaries(st.sampled_from(["type", "text", "image_url"]), json_values, max_size=2),
    )
    return st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
        optional={"content": st.text(max_size=20) | st.lists(part, max_size=3) | json_values},
    )


dialog_bodies = st.fixed_dictionaries(
    {"inputs": st.lists(st.lists(_dialog_message(), max_size=3), max_size=3) | json_values},
    optional={"parameters": parameters | json_values},
)
chat_bodies = st.fixed_dictionaries(
    {"messages": st.lists(_chat_message(), max_size=3) | json_values}, optional=dict.fromkeys(PARAMETERS, json_values)
)


def translate(data: Any) -> list[GenerationRequest]:
    wire = parse_invocation(data)
    return to_requests(wire, policy=POLICY, request_id="r")


def outcome(data: Any) -> list[GenerationRequest] | RequestError:
    """Requests, or the caller's error; anything else escapes and fails the test."""
    try:
        return translate(data)
    except RequestError as exc:
        assert 400 <= kind_of(exc).status < 500 and exc.message.strip()
        return exc


@FAST
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_parse_as_json_or_are_a_400(body: bytes) -> None:
    try:
        parse_json(body)
    except RequestError as exc:
        assert kind_of(exc).status == 400 and ("JSON" in exc.message or "UTF-8" in exc.message)


@FAST
@given(json_values | dialog_bodies | chat_bodies)
def test_any_json_value_becomes_requests_or_a_4xx_with_a_message(data: Any) -> None:
    result = outcome(data)
    if isinstance(result, list):
        assert result and all(any(m.role == "user" for m in r.messages) for r in result)


@FAST
@given(chat_bodies | json_values)
def test_the_chat_route_parses_or_refuses_with_a_400(data: Any) -> None:
    try:
        parse_chat(data)
    except RequestError as exc:
        assert kind_of(exc).status == 400 and exc.message


@FAST
@given(
    st.lists(
        st.lists(st.tuples(utf8_text, st.integers(0, 2), st.sampled_from(["user", "system"])), max_size=3),
        min_size=1,
        max_size=3,
    ),
    st.integers(1, 2000),
    st.floats(0, 5),
)
def test_a_valid_dialog_batch_keeps_order_text_images_and_parameters(
    dialogs: list[list[tuple[str, int, str]]], max_tokens: int, temperature: float
) -> None:
    inputs = []
    for turns in dialogs:
        messages = [{"role": role, "content": text, "images": GOOD_IMAGES[:count]} for text, count, role in turns]
        inputs.append([*messages, {"role": "user", "content": "Describe."}])
    body = {"inputs": inputs, "parameters": {"max_tokens": max_tokens, "temperature": temperature}}
    result = translate(json.loads(json.dumps(body)))
    assert len(result) == len(inputs)
    for request, dialog in zip(result, inputs, strict=True):
        assert request.params.max_tokens == max_tokens and math.isclose(request.params.temperature, temperature)
        assert [m.role for m in request.messages] == [m["role"] for m in dialog]
        for message, sent in zip(request.messages, dialog, strict=True):
            assert message.text == sent["content"] and len(message.images) == len(sent.get("images") or [])


@FAST
@given(st.lists(st.text(max_size=10).filter(lambda t: "<" not in t), min_size=1, max_size=5))
def test_markers_put_each_image_at_its_place(pieces: list[str]) -> None:
    images = [decode_inline(GOOD_IMAGES[0], policy=POLICY, source="i") for _ in pieces[1:]]
    parts = sagemaker.place_images("<ImageHere>".join(pieces), images)
    assert "".join(p.text for p in parts if isinstance(p, TextPart)) == "".join(pieces)
    assert sum(isinstance(p, ImagePart) for p in parts) == len(images)
    assert all(p.text for p in parts if isinstance(p, TextPart))  # no empty text pieces


@FAST
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=8)))
def test_json_lines_has_one_record_per_non_blank_line(lines: list[str]) -> None:
    # Only a newline ends a record (never CR, U+2028 or U+0085 inside one); blank means ASCII whitespace only.
    body = "\n".join(lines).encode()
    assert len(split_records(body)) == sum(1 for line in lines if line.encode().strip())


@FAST
@given(image_texts | st.text(max_size=200))
def test_an_image_field_decodes_or_is_a_4xx(text: str) -> None:
    try:
        image = decode_inline(text, policy=POLICY, source="image")
    except RequestError as exc:
        assert kind_of(exc).status in (400, 413) and exc.message.startswith("image")
    else:
        assert len(image.rgb) == image.width * image.height * 3 and max(image.width, image.height) <= 64
