"""Whole corpora through a SageMaker asynchronous endpoint: requests stored in S3 (moto), queued with the real
boto3 ``invoke_endpoint_async`` against a stand-in for SageMaker's async worker that calls a pagescribe server, and
answers read back from S3; a stopped `convert` resumes without asking again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from click.testing import CliRunner
from test_client_support import noisy_page_png, page_png

from asyncworker import AsyncRuntime
from pagescribe.cli import main
from pagescribe.client import Client
from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import PayloadTooLarge
from pdfgen import text_page, write_pdf
from servers import LiveServer, use_moto

REGION = "us-east-1"
ENDPOINT = "pagescribe-async"
REQUESTS = "s3://corpus/requests"


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    use_moto(monkeypatch, moto_url, REGION)
    boto3.client("s3").create_bucket(Bucket="corpus")
    yield moto_url
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)


@pytest.fixture
def model() -> Iterator[LiveServer[FakeEngine]]:
    engine = FakeEngine(model_name="served-model", reply="The page lists widgets.", n_slots=4, token_delay_s=0.005)
    with LiveServer(engine, max_body_bytes=300_000) as server:  # a noisy scan's body is refused (413)
        yield server


@pytest.fixture
def runtime(aws: str, model: LiveServer[FakeEngine], monkeypatch: pytest.MonkeyPatch) -> Iterator[AsyncRuntime]:
    stand_in = AsyncRuntime(model.url, aws, "s3://corpus/async/out/", "s3://corpus/async/failed/", delay_s=0.2)
    with stand_in:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", stand_in.url)
        yield stand_in


def keys(prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket="corpus", Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_a_page_goes_through_s3_and_the_queue_and_its_answer_comes_back(
    runtime: AsyncRuntime, model: LiveServer[FakeEngine]
) -> None:
    with Client.for_async_endpoint(ENDPOINT, s3_prefix=REQUESTS, poll_s=0.05) as client:
        result = client.describe(page_png(), prompt="Read.", max_tokens=50)
        again = client.describe(page_png(), prompt="Read.", max_tokens=50)
    assert (result.text, result.finish_reason, result.model) == (model.engine.reply, "stop", "served-model")
    assert again == result
    [queued] = runtime.invoked  # the same request again found its ticket: asked once
    assert queued.startswith(f"{REQUESTS}/inputs/") and queued.endswith(".json")
    assert [k.split("/")[1] for k in keys("requests/")] == ["inputs", "tickets"]
    body = json.loads(boto3.client("s3").get_object(Bucket="corpus", Key=queued.removeprefix("s3://corpus/"))["Body"].read())
    assert body["parameters"] == {"max_tokens": 50} and body["inputs"][0][0]["content"] == "Read."


def test_a_request_the_model_refuses_raises_its_own_error(runtime: AsyncRuntime) -> None:
    client = Client.for_async_endpoint(ENDPOINT, s3_prefix=REQUESTS, poll_s=0.05)
    with client, pytest.raises(PayloadTooLarge, match="over the limit"):
        client.describe(noisy_page_png(700, 700), prompt="Read.")
    assert keys("async/failed/") and not keys("async/out/")


def test_convert_a_folder_is_stopped_resumed_and_asks_for_no_page_twice(
    runtime: AsyncRuntime, aws: str, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_pdf(docs / "a.pdf", [text_page(f"A {n}", [f"line {n}"]) for n in range(3)])
    write_pdf(docs / "b.pdf", [text_page(f"B {n}", [f"line {n}"]) for n in range(2)])
    (docs / "c.png").write_bytes(noisy_page_png(700, 700))  # its request is refused by the model: a failed page
    out = tmp_path / "out"
    args = ["convert", str(docs), "--out", str(out), "--async-endpoint", ENDPOINT, "--s3", REQUESTS, "-j", "1",
            "--route", "vlm", "--progress", "quiet"]  # fmt: skip
    first = subprocess.Popen([sys.executable, "-m", "pagescribe.cli", *args], env=dict(os.environ))
    end = time.monotonic() + 60
    while len(runtime.done) < 2:
        assert first.poll() is None, "convert ended before it could be stopped"
        assert time.monotonic() < end, "no page was answered"
        time.sleep(0.02)
    first.kill()  # stopped mid-run: some pages recorded, one queued, the rest never asked
    first.wait(10)
    asked_before = len(runtime.invoked)
    assert 2 <= asked_before < 6
    resumed = CliRunner().invoke(main, args)
    assert resumed.exit_code == 1, resumed.output  # one page failed
    assert len(runtime.invoked) == len(set(runtime.invoked)) == 6  # every page asked exactly once in all
    records = {name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
               for name in ("a", "b", "c")}  # fmt: skip
    assert [r["status"] for r in records["a"] + records["b"]] == ["ok"] * 5
    assert {r["text"] for r in records["a"] + records["b"]} == {"The page lists widgets."}
    [failed] = records["c"]
    assert failed["status"] == "failed" and "PayloadTooLarge" in failed["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["pages_ok"], summary["pages_failed"]) == (5, 1)
