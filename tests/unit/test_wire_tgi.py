"""Format C (the TGI / LMI string shape), the transport keys clients leak, LangChain's image blocks, named prompts,
logprobs and ``/v1/models/{id}``: parsed by the wire adapters and answered by the app with FakeEngine."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from test_server_app import REPLY, png_b64, serve

from pagescribe.engine.fake import FAKE_LOGPROB, FakeEngine
from pagescribe.errors import InvalidRequest
from pagescribe.prompts import load_prompt
from pagescribe.types import ImagePart, TextPart
from pagescribe.wire import openai, tgi
from pagescribe.wire.dispatch import parse_chat, parse_invocation
from pagescribe.wire.media import MediaPolicy

POLICY = MediaPolicy()


def request(body: dict[str, Any]) -> Any:
    wire = parse_invocation(body)
    assert isinstance(wire, tgi.TgiRequest)
    return tgi.to_request(wire, policy=POLICY, request_id="r")


def kinds(parts: tuple[Any, ...]) -> list[str]:
    return [p.text if isinstance(p, TextPart) else f"<{p.image.width}x{p.image.height}>" for p in parts]


def test_markdown_images_go_where_they_are_in_the_string() -> None:
    inputs = f"Compare ![a](data:image/png;base64,{png_b64((8, 6))}) with ![](data:image/png;base64,{png_b64((4, 4))})."
    [message] = request({"inputs": inputs}).messages
    assert message.role == "user" and kinds(message.parts) == ["Compare ", "<8x6>", " with ", "<4x4>", "."]


def test_top_level_images_go_to_the_markers_or_first() -> None:
    marked = request({"inputs": "Look at <ImageHere> now.", "image": png_b64((5, 5))})
    first = request({"inputs": "Describe.", "images": [png_b64((3, 3)), png_b64((2, 2))]})
    assert kinds(marked.messages[0].parts) == ["Look at ", "<5x5>", " now."]
    assert kinds(first.messages[0].parts) == ["<3x3>", "<2x2>", "Describe."]
    with pytest.raises(InvalidRequest, match="2 <ImageHere> marker"):
        request({"inputs": "<ImageHere> and <ImageHere>", "image": png_b64()})


@pytest.mark.parametrize(
    ("parameters", "temperature"),
    [
        ({}, 0.0),  # TGI's default is greedy
        ({"do_sample": False, "temperature": 0.7}, 0.0),
        ({"do_sample": True}, 1.0),
        ({"temperature": 0.7}, 0.7),
        ({"top_k": 5}, 1.0),
    ],
)
def test_do_sample_and_the_sampling_knobs_decide_greedy_or_not(parameters: dict[str, Any], temperature: float) -> None:
    assert request({"inputs": "x", "parameters": parameters}).params.temperature == temperature


def test_tgi_names_reach_the_request() -> None:
    parameters = {"max_new_tokens": 7, "repetition_penalty": 1.2, "stop": ["END"], "seed": 3, "top_p": 0.5,
                  "truncate": 100, "details": True, "top_n_tokens": 2}  # fmt: skip
    made = request({"inputs": "x", "parameters": parameters})
    assert (made.params.max_tokens, made.params.repeat_penalty, made.params.stop, made.params.seed) == (
        7, 1.2, ("END",), 3,
    )
    assert made.truncate == 100 and made.params.logprobs == 2  # details asks for the tokens' log-probabilities


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"watermark": True}, "watermark is not supported"),
        ({"best_of": 2}, "best_of is not supported"),
        ({"typical_p": 0.9}, "typical_p is not supported"),
        ({"decoder_input_details": True}, "decoder_input_details is not supported"),
        ({"grammar": {"type": "json"}}, "unknown parameter(s): parameters.grammar"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_what_pagescribe_cannot_honour_is_a_400_naming_it(parameters: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        request({"inputs": "x", "parameters": parameters})
    assert named in info.value.message


def test_known_transport_keys_are_dropped_with_a_log_line_and_others_still_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {"inputs": "x", "parameters": {"max_new_tokens": 3, "sagemaker_base_url": "http://h"}}
    with caplog.at_level(logging.INFO, logger="pagescribe.wire"):
        parse_invocation(body)
        parse_chat({"messages": [{"role": "user", "content": "x"}], "aws_secret_access_key": "s3cret"})
    ignored = [r.__dict__["ignored"] for r in caplog.records if r.getMessage() == "ignored transport keys"]
    assert ignored == [["parameters.sagemaker_base_url"], ["aws_secret_access_key"]]
    assert "s3cret" not in caplog.text  # the names are logged, never the values
    with pytest.raises(InvalidRequest, match=r"unknown parameter.*sagemaker_endpoint"):
        parse_chat({"messages": [{"role": "user", "content": "x"}], "sagemaker_endpoint": "e"})


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "base64": "B64", "mime_type": "image/png", "id": "lc_1"},
        {"type": "image", "source_type": "base64", "data": "B64", "mime_type": "image/png"},
        {"type": "image", "url": "data:image/png;base64,B64"},
        {"type": "image", "source_type": "url", "url": "data:image/png;base64,B64"},
    ],
    ids=["v1-base64", "v0-base64", "v1-url", "v0-url"],
)
def test_langchains_standard_image_blocks_are_images(block: dict[str, Any]) -> None:
    filled = json.loads(json.dumps(block).replace("B64", png_b64((6, 4))))
    content = [filled, {"type": "text", "text": "Describe.", "id": "lc_2"}]
    body = parse_chat({"messages": [{"role": "user", "content": content}]})
    made = openai.to_request(body, policy=POLICY, request_id="r")
    assert kinds(made.messages[0].parts) == ["<6x4>", "Describe."]


def test_an_image_block_needs_one_source_and_no_file_id() -> None:
    for block in ({"type": "image", "mime_type": "image/png"}, {"type": "image", "file_id": "f", "url": "x"}):
        with pytest.raises(InvalidRequest):
            parse_chat({"messages": [{"role": "user", "content": [block]}]})


def test_a_named_prompt_goes_before_the_first_user_turn_as_convert_lays_it_out() -> None:
    made = request({"inputs": f"![](data:image/png;base64,{png_b64()})", "parameters": {"prompt": "markdown"}})
    parts = made.messages[0].parts
    assert isinstance(parts[0], TextPart) and parts[0].text == load_prompt("markdown").text + "\n"
    assert isinstance(parts[1], ImagePart)
    with pytest.raises(InvalidRequest, match="packaged: document, markdown"):
        request({"inputs": "x", "parameters": {"prompt": "poetry"}})


# -- answered by the app -----------------------------------------------------------------------------------


async def test_tgi_answers_in_tgis_shape_with_details_and_full_text() -> None:
    body = {"inputs": "Describe.", "parameters": {"details": True, "return_full_text": True, "seed": 5}}
    async with serve(FakeEngine()) as client:
        response = await client.post("/invocations", json=body)
    [answer] = response.json()
    assert response.status_code == 200 and answer["generated_text"] == "Describe." + REPLY
    details = answer["details"]
    assert details["finish_reason"] == "eos_token" and details["seed"] == 5
    assert details["generated_tokens"] == len(REPLY.split()) == len(details["tokens"])
    assert "".join(t["text"] for t in details["tokens"]) == REPLY and details["tokens"][0]["logprob"] == FAKE_LOGPROB


async def test_a_top_level_stream_gets_tgis_token_events_on_both_paths() -> None:
    body = {"inputs": "Describe.", "parameters": {"max_new_tokens": 4}, "stream": True}
    async with serve(FakeEngine()) as client:
        plain = await client.post("/invocations", json=body)
        runtime = await client.post("/endpoints/e/invocations-response-stream", json=body)
    # TGI writes "data:" with no space after it
    *tokens, final = [json.loads(block.removeprefix("data:")) for block in plain.text.split("\n\n") if block]
    assert plain.headers["content-type"].startswith("text/event-stream")
    assert "".join(t["token"]["text"] for t in tokens) == "The process flow starts" == final["generated_text"]
    assert final["token"]["special"] and not any(t["token"]["special"] for t in tokens)
    assert runtime.status_code == 200 and b'"generated_text":"The process flow starts"' in runtime.content


async def test_v1_models_by_id_and_logprobs_on_v1() -> None:
    async with serve(FakeEngine()) as client:
        found = await client.get("/v1/models/fake-model")
        missing = await client.get("/v1/models/gpt-4o")
        body = {"messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": 2, "max_tokens": 3}
        answer = (await client.post("/v1/chat/completions", json=body)).json()
        refused = await client.post("/v1/chat/completions", json={**body, "logprobs": False})
    assert found.json()["id"] == "fake-model" and found.json()["object"] == "model"
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    content = answer["choices"][0]["logprobs"]["content"]
    assert [t["token"] for t in content] == ["The", " process", " flow"]
    assert all(t["logprob"] == FAKE_LOGPROB and len(t["top_logprobs"]) == 2 for t in content)
    assert refused.status_code == 400 and "top_logprobs needs logprobs" in refused.json()["error"]["message"]
