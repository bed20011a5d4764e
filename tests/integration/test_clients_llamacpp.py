"""The request shapes users' own tools send, sent by those tools (not copies of their bodies) to a real server on
loopback running the real llama.cpp engine (tiny model): LangChain's documented ``SagemakerEndpoint`` handler,
LiteLLM's ``sagemaker/`` and ``sagemaker_chat/`` routes, the SageMaker Python SDK v2 ``Predictor``, LangChain's
standard image blocks, and the openai client's ``models.retrieve`` and ``logprobs``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from test_server_llamacpp import page_b64

from pagescribe.engine.llamacpp import LlamaCppEngine
from servers import LiveServer, sagemaker_env

pytestmark = pytest.mark.integration

Live = LiveServer[LlamaCppEngine]
AWS_ARGS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_region_name": "us-east-1"}


def png_b64(label: str = "Invoice 42") -> str:
    return page_b64(label=label)


@pytest.fixture(scope="module")
def live(server_engine: LlamaCppEngine) -> Iterator[Live]:
    with LiveServer(server_engine, time_limit_s=20) as server:
        yield server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, live: Live) -> None:
    for name, value in sagemaker_env(live.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM would fetch a price list otherwise
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


def greedy(live: Live, text: str, *, max_tokens: int = 6, image: str | None = None) -> str:
    """The reference answer for one user turn (format A, greedy): what every client must get back."""
    import httpx

    message: dict[str, Any] = {"role": "user", "content": text}
    if image is not None:
        message["image"] = image
    body = {"inputs": [[message]], "parameters": {"max_tokens": max_tokens, "temperature": 0}}
    answer: str = httpx.post(f"{live.url}/invocations", json=body, timeout=60).json()[0]["generated_text"]
    return answer


# -- LangChain ---------------------------------------------------------------------------------------------


def test_langchains_documented_sagemaker_endpoint_handler_gets_the_text(aws: None, live: Live) -> None:
    import boto3
    from langchain_aws.llms import SagemakerEndpoint
    from langchain_aws.llms.sagemaker_endpoint import LLMContentHandler

    class ContentHandler(LLMContentHandler):  # as LangChain's SageMaker docs write it
        content_type = "application/json"
        accepts = "application/json"

        def transform_input(self, prompt: str, model_kwargs: dict[str, Any]) -> bytes:
            return json.dumps({"inputs": prompt, "parameters": model_kwargs}).encode("utf-8")

        def transform_output(self, output: Any) -> str:
            response_json = json.loads(output.read().decode("utf-8"))
            return str(response_json[0]["generated_text"])

    llm = SagemakerEndpoint(
        endpoint_name="text-vision-llm-model-7B-image2text",
        client=boto3.client("sagemaker-runtime"),
        model_kwargs={"max_new_tokens": 6, "do_sample": False},
        content_handler=ContentHandler(),
    )
    image = png_b64()
    text = llm.invoke(f"![]({'data:image/png;base64,' + image}) Describe this page.")
    assert text and text == greedy(live, " Describe this page.", image=image)


def test_langchains_standard_image_block_reaches_the_model(aws: None, live: Live) -> None:
    import boto3
    from langchain_aws.chat_models.sagemaker_endpoint import ChatModelContentHandler, ChatSagemakerEndpoint
    from langchain_core.messages import HumanMessage
    from langchain_core.messages.content import create_image_block, create_text_block

    class OpenAIBody(ChatModelContentHandler):
        content_type = "application/json"
        accepts = "application/json"

        def transform_input(self, prompt: Any, model_kwargs: dict[str, Any]) -> bytes:
            messages = [{"role": "user", "content": m["content"]} for m in prompt]
            return json.dumps({"messages": messages, **model_kwargs}).encode()

        def transform_output(self, output: Any) -> Any:
            from langchain_core.messages import AIMessage

            return AIMessage(content=json.loads(output.read())["choices"][0]["message"]["content"])

    image = png_b64("Ledger 7")
    chat = ChatSagemakerEndpoint(
        endpoint_name="e",
        client=boto3.client("sagemaker-runtime"),
        model_kwargs={"max_tokens": 6, "temperature": 0},
        content_handler=OpenAIBody(),
    )
    blocks = [create_image_block(base64=image, mime_type="image/png"), create_text_block("Describe.")]
    answer = chat.invoke([HumanMessage(content_blocks=blocks)])
    assert answer.content and answer.content == greedy(live, "Describe.", image=image)


# -- LiteLLM -----------------------------------------------------------------------------------------------


def litellm_both(model: str, messages: list[dict[str, Any]], live: Live, **more: Any) -> tuple[str, str]:
    """The answer LiteLLM gets from ``model`` (a ``sagemaker/`` or ``sagemaker_chat/`` route) plain and streamed."""
    import litellm

    base = f"{live.url}/endpoints/ep"
    args: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": 6, **AWS_ARGS, **more}
    plain = litellm.completion(**args, sagemaker_base_url=f"{base}/invocations")
    streamed = litellm.completion(**args, stream=True, sagemaker_base_url=f"{base}/invocations-response-stream")
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed)
    return str(plain.choices[0].message.content), text


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_litellms_sagemaker_route_invokes_and_streams(aws: None, live: Live, with_image: bool) -> None:
    image = png_b64("Chart") if with_image else None
    text = "Describe this page." if image is None else f"![](data:image/png;base64,{image}) Describe this page."
    # no temperature: TGI's default, greedy (LiteLLM would send temperature 0 as 0.01, which samples)
    plain, streamed = litellm_both("sagemaker/ep", [{"role": "user", "content": text}], live)
    assert plain and streamed == plain
    if image is not None:
        assert plain == greedy(live, " Describe this page.", image=image)


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_litellms_sagemaker_chat_route_invokes_and_streams(aws: None, live: Live, with_image: bool) -> None:
    content: list[dict[str, Any]] = [{"type": "text", "text": "Describe."}]
    image = png_b64("Table 3") if with_image else None
    if image is not None:  # the image first, where format A puts it too
        content.insert(0, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}})
    plain, streamed = litellm_both("sagemaker_chat/ep", [{"role": "user", "content": content}], live, temperature=0)
    assert plain and streamed == plain
    if image is not None:  # the image reached the model: the answer is the one for that page
        assert plain == greedy(live, "Describe.", image=image)


# -- the SageMaker Python SDK v2 -----------------------------------------------------------------------------


def predictor(live: Live) -> Any:
    import boto3
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer
    from sagemaker.session import Session

    runtime = boto3.client("sagemaker-runtime")
    session = Session(boto_session=boto3.Session(region_name="us-east-1"), sagemaker_runtime_client=runtime)
    return Predictor("ep", sagemaker_session=session, serializer=JSONSerializer(), deserializer=JSONDeserializer())


def test_sagemaker_sdk_v2_predictor_sends_the_tgi_shape_plain_and_streamed(aws: None, live: Live) -> None:
    from sagemaker.iterators import LineIterator

    image = png_b64("Slide 9")
    body = {
        "inputs": f"![](data:image/png;base64,{image}) Describe.",
        "parameters": {"max_new_tokens": 6, "do_sample": False, "details": True},
    }
    [answer] = predictor(live).predict(body)
    lines = predictor(live).predict_stream({**body, "stream": True}, iterator=LineIterator)
    events = [json.loads(line.decode().removeprefix("data:")) for line in lines if line.strip()]
    assert answer["generated_text"] == greedy(live, " Describe.", image=image)
    assert answer["details"]["generated_tokens"] == len(answer["details"]["tokens"]) <= 6
    assert all(t["logprob"] <= 0 for t in answer["details"]["tokens"])
    assert "".join(e["token"]["text"] for e in events) == events[-1]["generated_text"] == answer["generated_text"]


# -- the openai client ---------------------------------------------------------------------------------------


def test_openai_models_retrieve_and_logprobs(live: Live) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
    model = client.models.retrieve("pagescribe-tiny")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    messages = [{"role": "user", "content": "Describe."}]
    answer = client.chat.completions.create(
        model=model.id, messages=messages, max_tokens=5, logprobs=True, top_logprobs=3
    )
    stream = client.chat.completions.create(
        model=model.id, messages=messages, max_tokens=5, logprobs=True, stream=True
    )
    chunks = [c for c in stream if c.choices and c.choices[0].logprobs is not None]
    tokens = answer.choices[0].logprobs.content
    assert model.id == "pagescribe-tiny" and model.object == "model"
    assert "".join(t.token for t in tokens) == answer.choices[0].message.content
    # greedy: the chosen token is the likeliest, so it heads its own alternatives with the same log-probability
    assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token for t in tokens)
    assert all(math.isclose(t.top_logprobs[0].logprob, t.logprob, abs_tol=1e-6) and t.logprob <= 0 for t in tokens)
    assert [t.logprob for t in chunks[-1].choices[0].logprobs.content] == [t.logprob for t in tokens]


# -- TGI parameters the real engine honours ------------------------------------------------------------------


def test_tgi_truncate_keeps_the_last_tokens_and_watermark_is_refused(live: Live) -> None:
    import httpx

    tail = "Describe the last page."
    scheduler = live.engine._scheduler
    assert scheduler is not None
    keep = len(scheduler.native.tokenize(tail))
    body = {"inputs": "word " * 400 + tail, "parameters": {"max_new_tokens": 5, "truncate": keep}}
    cut = httpx.post(f"{live.url}/invocations", json=body, timeout=60).json()
    full = httpx.post(f"{live.url}/invocations", json={**body, "parameters": {"max_new_tokens": 5}}, timeout=60)
    refused = httpx.post(f"{live.url}/invocations", json={"inputs": "x", "parameters": {"watermark": True}})
    assert cut[0]["generated_text"] == greedy(live, tail, max_tokens=5)
    assert full.json()[0]["generated_text"] != cut[0]["generated_text"]
    assert refused.status_code == 400 and "watermark is not supported" in refused.json()["error"]["message"]


def test_convert_records_each_pages_confidence_in_process_and_over_a_server(
    live: Live, tiny_engine: LlamaCppEngine, tmp_path: Any
) -> None:
    from pagescribe.client import Client
    from pagescribe.pipeline import ConvertOptions, convert
    from pagescribe.types import SamplingParams
    from pdfgen import write_png

    page = write_png(tmp_path / "page.png", text="Totals 41")
    options = ConvertOptions(route="vlm", params=SamplingParams(max_tokens=6, seed=0, logprobs=0))
    local = list(convert([page], out_dir=tmp_path / "a", backend=tiny_engine, options=options))
    with Client.for_url(live.url) as client:
        remote = list(convert([page], out_dir=tmp_path / "b", backend=client, options=options))
    plain = list(convert([page], out_dir=tmp_path / "c", backend=tiny_engine,
                         options=ConvertOptions(route="vlm", params=SamplingParams(max_tokens=6, seed=0))))  # fmt: skip
    [a], [b], [c] = local, remote, plain
    assert a.status == "ok" and a.confidence is not None and 0 < a.confidence <= 1
    # (the same text; its probabilities agree up to how the prefix cache and the batch round the logits)
    assert b.confidence == pytest.approx(a.confidence, rel=0.02) and b.text == a.text == c.text
    assert c.confidence is None
