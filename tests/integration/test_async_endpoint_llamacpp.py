"""A page through the asynchronous-endpoint path (S3 in moto, the async worker stand-in) to the real llama.cpp
engine behind `pagescribe serve`, answered as the model in process answers it."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
import requests
from PIL import Image, ImageDraw

from asyncworker import AsyncRuntime
from pagescribe.client import Client
from pagescribe.engine.factory import build_engine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.models.files import ModelFiles
from servers import LiveServer, use_moto


def page_png() -> bytes:
    image = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(image).text((20, 20), "Sent through S3", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def served(tiny_model: ModelFiles, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AsyncRuntime]:
    use_moto(monkeypatch, moto_url, "us-east-1")
    boto3.client("s3").create_bucket(Bucket="corpus")
    engine = build_engine(EngineOptions(ctx=4096, threads=2), files=tiny_model)
    with LiveServer(engine) as live, AsyncRuntime(live.url, moto_url, "s3://corpus/out/", "s3://corpus/err/") as rt:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", rt.url)
        yield rt
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)


def test_the_async_endpoint_answers_as_the_model_in_process(
    served: AsyncRuntime, tiny_engine: LlamaCppEngine
) -> None:
    with Client.for_async_endpoint("pagescribe-async", s3_prefix="s3://corpus/requests", poll_s=0.05) as remote:
        answered = remote.describe(page_png(), prompt="Describe this page.", max_tokens=12)
    local = Client.in_process(engine=tiny_engine).describe(page_png(), prompt="Describe this page.", max_tokens=12)
    assert (answered.text, answered.finish_reason, answered.usage.completion_tokens) == (local.text, "length", 12)
    assert len(served.invoked) == 1 and served.done == served.invoked
