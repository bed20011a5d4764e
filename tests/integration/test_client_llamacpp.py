"""The client and `pagescribe invoke` against a real server on loopback running llama.cpp (tiny model).

The tiny model has random weights, so its words mean nothing; greedy decoding makes them repeatable, which
is what these tests compare: the same page gives the same text over HTTP, through boto3, streamed or not,
and in process.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pagescribe.cli.invoke import invoke_command
from pagescribe.client import AsyncClient, Client
from pagescribe.engine.base import Work
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.models.files import ModelFiles
from pagescribe.prompts import load_prompt
from pagescribe.types import GenerationRequest
from servers import LiveServer, sagemaker_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "text-vision-llm-model-7B-image2text"
PAYLOAD_LIMIT = 6_000_000
GREEDY: dict[str, Any] = {"max_tokens": 24, "temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0, "seed": 0}


class Recording(LlamaCppEngine):
    """The real engine, keeping the requests it was given."""

    def __init__(self, files: ModelFiles, **options: Any) -> None:
        super().__init__(EngineOptions(**options), files=files)
        self.received: list[GenerationRequest] = []

    def submit(self, works: Sequence[Work], *, wait: bool = False) -> None:
        self.received.extend(work.request for work in works)
        super().submit(works, wait=wait)


Live = LiveServer[Recording]


@pytest.fixture(scope="module")
def live(tiny_model: ModelFiles) -> Iterator[Live]:
    # Bodies over the SageMaker limit are refused, as SageMaker would.
    with LiveServer(Recording(tiny_model, ctx=4096, threads=2), max_body_bytes=PAYLOAD_LIMIT) as server:
        yield server


@pytest.fixture(scope="module")
def aws_env(live: Live) -> dict[str, str]:
    return sagemaker_env(live.url)


@pytest.fixture
def page(tmp_path: Path) -> Path:
    from PIL import Image, ImageDraw

    path = tmp_path / "page.png"
    image = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(image).text((20, 20), "Invoice 42", fill="black")
    image.save(path)
    return path


def noisy_page_png(width: int, height: int) -> bytes:
    """A scan-like page whose PNG barely compresses (about ``width * height * 3`` bytes)."""
    import io

    import numpy as np
    from PIL import Image, ImageDraw

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    ImageDraw.Draw(image).rectangle((width // 10, height // 10, width // 2, height // 5), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def greedy_args() -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, value in GREEDY.items()]


def test_invoke_prints_the_description_over_http_and_through_boto3_streamed_or_not(
    live: Live, aws_env: dict[str, str], page: Path
) -> None:
    with Client.for_url(live.url) as client:
        expected = client.describe(page, **GREEDY).text
    assert expected.strip()
    runner = CliRunner()
    for target in (["--url", live.url], ["--endpoint", ENDPOINT]):
        for stream in ([], ["--stream"]):
            result = runner.invoke(invoke_command, [str(page), *target, *greedy_args(), *stream], env=aws_env)
            assert (result.exit_code, result.stdout, result.stderr) == (0, expected + "\n", ""), (target, stream)


def test_every_transport_and_the_async_client_give_the_same_text(
    live: Live, aws_env: dict[str, str], page: Path, tiny_model: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    with Client.for_url(live.url) as http, Client.for_endpoint(ENDPOINT) as sagemaker:
        texts = {http.describe(page, **GREEDY).text, sagemaker.describe(page, **GREEDY).text}
        with sagemaker.stream(page, **GREEDY) as stream:
            pieces = list(stream)
    with Client.in_process(tiny_model.text, mmproj=str(tiny_model.mmproj), ctx=4096, threads=2) as local:
        texts.add(local.describe(page, **GREEDY).text)

    async def batch() -> list[Any]:
        async with AsyncClient.for_url(live.url) as client:
            return await client.describe_many([page, page.read_bytes()], **GREEDY)

    texts.update(result.text for result in asyncio.run(batch()))
    assert len(texts) == 1 and len(pieces) > 1 and "".join(pieces) == stream.result.text in texts


def test_a_9_mb_page_is_downsized_under_the_payload_limit_and_succeeds(
    live: Live, aws_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(noisy_page_png(1900, 1750))
    assert path.stat().st_size > 9_000_000
    before = len(live.engine.received)
    result = CliRunner().invoke(invoke_command, [str(path), "--endpoint", ENDPOINT, "--max-tokens", "8"], env=aws_env)
    assert result.exit_code == 0 and result.stdout.strip()
    assert re.fullmatch(
        rf"pagescribe: warning: {re.escape(str(path))}: 1900x1750 PNG \(9\.\d+ MB\) does not fit the 6 MB payload "
        r"limit once base64-encoded; sent it downsized to (\d+)x(\d+) PNG \(\d\.\d+ MB\)\n",
        result.stderr,
    )
    # The server (which refuses bodies over 6 MB) got one page, smaller, with the same aspect.
    [request] = live.engine.received[before:]
    [image] = request.images
    assert image.width < 1900 and image.width / image.height == pytest.approx(1900 / 1750, rel=0.01)


def test_a_body_over_the_servers_limit_is_refused_with_its_message_verbatim(live: Live, tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(noisy_page_png(1500, 1400))
    args = [str(path), "--url", live.url, "--payload-limit", "50"]
    result = CliRunner().invoke(invoke_command, args)
    assert result.exit_code == 1 and result.stdout == ""
    assert re.fullmatch(
        rf"pagescribe: {re.escape(str(path))}: the request body is [\d,]+ bytes, over the limit of 6,000,000 bytes\n",
        result.stderr,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["invoke_endpoint", "response_stream"])
def test_the_example_script_describes_a_page_with_the_usual_parameters(
    live: Live, aws_env: dict[str, str], page: Path, stream: bool
) -> None:
    before = len(live.engine.received)
    args = [sys.executable, str(ROOT / "examples" / "invoke_endpoint.py"), str(page), "--endpoint", ENDPOINT]
    args += ["--max-tokens", "16", *(["--stream"] if stream else [])]
    done = subprocess.run(args, env={**os.environ, **aws_env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and re.search(r"\(\d+ prompt \+ \d+ generated tokens\)", done.stderr)
    [request] = live.engine.received[before:]
    params = request.params
    assert (params.max_tokens, params.top_p, params.temperature, params.repeat_penalty) == (16, 0.8, 1.0, 1.005)
    assert request.messages[0].text == load_prompt("document").text and len(request.images) == 1
