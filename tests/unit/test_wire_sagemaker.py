"""Format A (the dialog batch): parsing, image placement, aliases, strictness and the answer's shape."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from pagescribe.errors import ImageError, ImageTooLarge, InvalidRequest
from pagescribe.images import ImageLimits
from pagescribe.types import GenerationResult, ImagePart, TextPart, Timings, Usage
from pagescribe.wire.dispatch import parse_invocation
from pagescribe.wire.media import MediaPolicy
from pagescribe.wire.sagemaker import DialogBatchRequest, answer, final_line, to_requests, token_line

POLICY = MediaPolicy()


def png(color: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (6, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def requests_for(body: dict[str, Any], policy: MediaPolicy = POLICY) -> list[Any]:
    wire = parse_invocation(body)
    assert isinstance(wire, DialogBatchRequest)
    return to_requests(wire, policy=policy, request_id="r")


def user(content: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


def test_the_first_clients_payload_parses_with_its_parameters() -> None:
    body = {
        "inputs": [[user("<ImageHere>Describe this page.", image=b64(png()))]],
        "parameters": {"max_tokens": 1024, "top_p": 0.8, "temperature": 1.0, "repeat_penalty": 1.005},
    }
    [request] = requests_for(body)
    assert request.params.max_tokens == 1024
    assert request.params.top_p == 0.8
    assert request.params.temperature == 1.0
    assert request.params.repeat_penalty == 1.005
    [message] = request.messages
    assert isinstance(message.parts[0], ImagePart)
    assert (message.parts[0].image.width, message.parts[0].image.height) == (6, 4)
    assert message.parts[1:] == (TextPart("Describe this page."),)


def test_marker_in_the_middle_puts_the_image_there_and_disappears() -> None:
    [request] = requests_for({"inputs": [[user("Look at <ImageHere> and describe it.", image=b64(png()))]]})
    parts = request.messages[0].parts
    assert [type(p) for p in parts] == [TextPart, ImagePart, TextPart]
    assert parts[0] == TextPart("Look at ") and parts[2] == TextPart(" and describe it.")


def test_minigpt_wrapper_goes_with_its_marker() -> None:
    [request] = requests_for({"inputs": [[user("A <Img><ImageHere></Img> B", image=b64(png()))]]})
    assert request.messages[0].parts[0] == TextPart("A ")
    assert request.messages[0].parts[2] == TextPart(" B")
    assert "Img" not in request.messages[0].text


def test_several_markers_take_the_images_in_order() -> None:
    red, blue = png((255, 0, 0)), png((0, 0, 255), size=(3, 9))
    [request] = requests_for(
        {"inputs": [[user("first <ImageHere> then <ImageHere> end", images=[b64(red), b64(blue)])]]}
    )
    images = request.messages[0].images
    assert [(i.width, i.height) for i in images] == [(6, 4), (3, 9)]
    assert images[0].rgb[:3] == bytes((255, 0, 0)) and images[1].rgb[:3] == bytes((0, 0, 255))


def test_without_a_marker_the_images_go_before_the_text() -> None:
    [request] = requests_for({"inputs": [[user("Describe.", image=b64(png()), images=[b64(png())])]]})
    assert [type(p) for p in request.messages[0].parts] == [ImagePart, ImagePart, TextPart]


def test_marker_count_must_match_image_count() -> None:
    with pytest.raises(InvalidRequest, match=r"2 <ImageHere> marker\(s\) but the message carries 1") as info:
        requests_for({"inputs": [[user("<ImageHere><ImageHere>", image=b64(png()))]]})
    assert info.value.param == "inputs[0][0].content"


def test_lookalike_markers_and_special_tokens_stay_plain_text() -> None:
    text = "<image> <__media__> </s> [INST] <<SYS>> <|im_start|>"
    [request] = requests_for({"inputs": [[user(text)]]})
    assert request.messages[0].parts == (TextPart(text),)


def test_two_dialogs_become_two_independent_requests_in_order() -> None:
    body = {"inputs": [[user("one")], [{"role": "system", "content": "sys"}, user("two")]]}
    first, second = requests_for(body)
    assert first.messages[0].text == "one"
    assert [m.role for m in second.messages] == ["system", "user"]
    assert first.request_id != second.request_id


@pytest.mark.parametrize(
    ("encode", "label"),
    [
        (lambda d: base64.urlsafe_b64encode(d).decode(), "url-safe"),
        (lambda d: base64.b64encode(d).decode().rstrip("="), "unpadded"),
        (lambda d: "\n".join(base64.b64encode(d).decode()[i : i + 60] for i in range(0, 400, 60)), "wrapped"),
        (lambda d: "data:image/png;base64," + base64.b64encode(d).decode(), "data uri"),
    ],
)
def test_every_base64_spelling_decodes(encode: Any, label: str) -> None:
    data = png(size=(40, 30))
    [request] = requests_for({"inputs": [[user("x", image=encode(data))]]})
    assert request.messages[0].images[0].width == 40, label


def test_bad_base64_is_an_image_error_naming_the_field() -> None:
    with pytest.raises(ImageError) as info:
        requests_for({"inputs": [[user("x", image="not base64 at all!")]]})
    assert info.value.param == "inputs[0][0].image"
    assert "inputs[0][0].image" in info.value.message


def test_an_image_over_the_pixel_limit_is_too_large() -> None:
    policy = MediaPolicy(limits=ImageLimits(max_pixels=100))
    with pytest.raises(ImageTooLarge):
        requests_for({"inputs": [[user("x", images=[b64(png(size=(20, 20)))])]]}, policy)


def test_aliases_map_to_llamacpp_names() -> None:
    [request] = requests_for({"inputs": [[user("x")]], "parameters": {"max_new_tokens": 7, "repetition_penalty": 1.2}})
    assert request.params.max_tokens == 7
    assert request.params.repeat_penalty == 1.2


def test_a_name_and_its_alias_together_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="max_tokens or max_new_tokens"):
        requests_for({"inputs": [[user("x")]], "parameters": {"max_tokens": 7, "max_new_tokens": 8}})


def test_unknown_parameters_are_named_in_the_error() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_invocation({"inputs": [[user("x")]], "parameters": {"max_tokens": 5, "beam_width": 2, "foo": 1}})
    assert "beam_width" in info.value.message and "foo" in info.value.message
    assert info.value.param == "parameters.beam_width"


@pytest.mark.parametrize(
    "parameters",
    [
        {"max_tokens": 0},
        {"temperature": -1},
        {"top_p": 1.5},
        {"max_tokens": "10"},
        {"stream": "yes"},
        {"time_limit_s": 0},
        {"stop": [""]},
        {"response_format": {"type": "xml"}},
    ],
)
def test_wrong_types_and_out_of_range_values_are_refused(parameters: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_invocation({"inputs": [[user("x")]], "parameters": parameters})
    assert info.value.param is not None and info.value.param.startswith("parameters.")


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": []},
        {"inputs": 42},  # (a string is format C, the TGI shape: test_wire_tgi.py)
        {"inputs": [[{"role": "robot", "content": "x"}]]},
        {"inputs": [[{"role": "user"}]]},
        {"inputs": [[user("x", picture="...")]]},
    ],
)
def test_malformed_dialogs_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        parse_invocation(body)


def test_all_sampling_parameters_reach_the_request() -> None:
    parameters = {
        "top_k": 5,
        "min_p": 0.1,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "seed": 42,
        "stop": "END",
        "time_limit_s": 3.5,
        "response_format": {"type": "json_object"},
    }
    [request] = requests_for({"inputs": [[user("x")]], "parameters": parameters})
    p = request.params
    assert (p.top_k, p.min_p, p.presence_penalty, p.frequency_penalty, p.seed) == (5, 0.1, 0.5, -0.5, 42)
    assert p.stop == ("END",)
    assert p.response_format == {"type": "json_object"}
    assert request.time_limit_s == 3.5


def test_json_schema_response_format_is_passed_through() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "page", "schema": schema}}
    [request] = requests_for({"inputs": [[user("x")]], "parameters": {"response_format": fmt}})
    assert request.params.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "page", "schema": schema},
    }


def _result(text: str = "Hello there", finish: Any = "stop") -> GenerationResult:
    return GenerationResult(text, finish, Usage(10, 2), Timings(1.0, 2.0, 3.0), "m")


def test_answer_has_the_jumpstart_shape_plus_usage_and_timings() -> None:
    assert answer(_result()) == {
        "generation": {"role": "assistant", "content": "Hello there"},
        "generated_text": "Hello there",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        "model": "m",
        "timings": {"image_encode_ms": 1.0, "prompt_ms": 2.0, "generate_ms": 3.0},
    }


def test_stream_lines_carry_tokens_then_the_whole_answer() -> None:
    assert token_line("He", index=1) == {"token": {"text": "He"}, "index": 1}
    final = final_line(_result(finish="time_limit"), index=1)
    assert final["generated_text"] == "Hello there" and final["finish_reason"] == "time_limit"
    assert final["index"] == 1
