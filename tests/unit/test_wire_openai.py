"""Format B (OpenAI chat completions): content parts, image URLs and their allowlist, answer shapes."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from pagescribe.errors import ImageError, InvalidRequest
from pagescribe.types import GenerationResult, ImagePart, TextPart, Timings, Usage
from pagescribe.wire import openai
from pagescribe.wire.dispatch import parse_chat, parse_invocation
from pagescribe.wire.media import MediaPolicy

POLICY = MediaPolicy()


def data_uri(size: tuple[int, int] = (5, 7)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (0, 128, 0)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def request_for(body: dict[str, Any], policy: MediaPolicy = POLICY) -> Any:
    return openai.to_request(parse_chat(body), policy=policy, request_id="r")


def test_parts_keep_their_order_and_data_uris_decode() -> None:
    content = [{"type": "text", "text": "before"}, image_part(data_uri()), {"type": "text", "text": "after"}]
    request = request_for({"messages": [{"role": "user", "content": content}]})
    parts = request.messages[0].parts
    assert parts[0] == TextPart("before") and parts[2] == TextPart("after")
    assert isinstance(parts[1], ImagePart) and (parts[1].image.width, parts[1].image.height) == (5, 7)


def test_plain_string_content_and_developer_role() -> None:
    request = request_for(
        {"messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    )
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].parts == (TextPart("be brief"),)


def test_openai_and_llamacpp_sampling_fields() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 33,
        "temperature": 0.2,
        "top_k": 3,
        "repeat_penalty": 1.1,
        "seed": 7,
        "stop": ["\n\n"],
        "n": 1,
        "user": "someone",
    }
    request = request_for(body)
    assert request.params.max_tokens == 33
    assert (request.params.temperature, request.params.top_k, request.params.repeat_penalty) == (0.2, 3, 1.1)
    assert request.params.seed == 7 and request.params.stop == ("\n\n",)


def test_max_tokens_wins_over_max_completion_tokens() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "max_completion_tokens": 50}
    assert request_for(body).params.max_tokens == 5


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/x.png", "https://example.com/a.png"])
def test_remote_urls_are_refused_without_an_allowlist(url: str) -> None:
    with pytest.raises(InvalidRequest, match="remote image URLs are refused") as info:
        request_for({"messages": [{"role": "user", "content": [image_part(url)]}]})
    assert info.value.param == "messages[0].content[0].image_url"


def test_file_urls_are_refused_even_with_an_allowlist() -> None:
    policy = MediaPolicy(allowed_hosts=frozenset({"", "localhost"}))
    with pytest.raises(InvalidRequest, match="refused"):
        request_for({"messages": [{"role": "user", "content": [image_part("file:///etc/passwd")]}]}, policy)


def test_an_allowlisted_host_passes_the_allowlist_but_not_to_a_private_address() -> None:
    # the host is allowed, but it resolves into the private range: the fetcher refuses it before connecting
    policy = MediaPolicy(allowed_hosts=frozenset({"images.example.com"}), resolver=lambda host, port: ["10.0.0.7"])
    with pytest.raises(InvalidRequest) as info:
        request_for(
            {"messages": [{"role": "user", "content": [image_part("https://images.example.com/a.png")]}]},
            policy,
        )
    assert "resolves to a non-public address (10.0.0.7)" in info.value.message


def test_bare_base64_in_image_url_is_decoded_as_an_image() -> None:
    raw = data_uri().split(",", 1)[1]
    request = request_for({"messages": [{"role": "user", "content": [image_part(raw)]}]})
    assert request.messages[0].images[0].width == 5


def test_a_data_uri_that_is_not_an_image_is_an_image_error() -> None:
    with pytest.raises(ImageError):
        request_for({"messages": [{"role": "user", "content": [image_part("data:text/plain;base64,aGk=")]}]})


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
        {"messages": [{"role": "user", "content": "hi"}], "tools": []},
        {"messages": [{"role": "user", "content": "hi"}], "n": 2},
        {"messages": [{"role": "tool", "content": "hi"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "lone \udfff surrogate"}]}]},
    ],
)
def test_what_is_not_supported_is_a_400_not_silence(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        parse_chat(body)


def test_invocations_dispatches_openai_bodies_by_shape() -> None:
    assert isinstance(parse_invocation({"messages": [{"role": "user", "content": "hi"}]}), openai.ChatCompletionRequest)


def test_a_body_of_neither_shape_says_what_was_expected() -> None:
    with pytest.raises(InvalidRequest, match=r'"inputs".*"messages"'):
        parse_invocation({"prompt": "hi"})


def _result(finish: Any = "stop") -> GenerationResult:
    return GenerationResult("Hi!", finish, Usage(4, 2), Timings(), "m")


def test_completion_shape() -> None:
    body = openai.completion(_result(), completion_id="chatcmpl-1", created=5)
    assert body["object"] == "chat.completion" and body["id"] == "chatcmpl-1"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hi!"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def test_a_time_limit_reads_as_length_to_openai_clients_but_is_still_reported() -> None:
    choice = openai.completion(_result("time_limit"), completion_id="c", created=0)["choices"][0]
    assert choice["finish_reason"] == "length" and choice["stop_reason"] == "time_limit"


def test_model_list_names_the_model() -> None:
    listing = openai.model_list("tiny", created=1)
    assert [m["id"] for m in listing["data"]] == ["tiny"]
