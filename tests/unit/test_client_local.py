"""The in-process transport: the same interface, the server's rules, the engine's slots."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image
from test_client_support import page_png

from pagescribe.client import Client
from pagescribe.engine.fake import FakeEngine
from pagescribe.errors import ImageError, InvalidRequest
from pagescribe.prompts import load_prompt
from pagescribe.types import ImagePart, TextPart


def test_describe_gives_the_engine_the_image_then_the_prompt_with_the_parameters(tmp_path: Path) -> None:
    engine = FakeEngine(reply="A scanned invoice")
    path = tmp_path / "page.png"
    path.write_bytes(page_png(400, 300))
    with Client.in_process(engine=engine) as client:
        result = client.describe(path, max_tokens=2, temperature=0.7, repeat_penalty=1.005, seed=7, time_limit_s=9)
    assert (result.text, result.finish_reason, result.model) == ("A scanned", "length", "fake-model")
    assert result.usage.completion_tokens == 2
    [request] = engine.requests
    [message] = request.messages
    image, text = message.parts
    assert isinstance(image, ImagePart) and (image.image.width, image.image.height) == (400, 300)
    assert isinstance(text, TextPart) and text.text == load_prompt("document").text
    params = request.params
    assert (params.max_tokens, params.temperature, params.repeat_penalty, params.seed) == (2, 0.7, 1.005, 7)
    assert request.time_limit_s == 9
    assert not engine.closed  # an engine passed in is the caller's to close


def test_markers_place_several_images_as_the_server_would() -> None:
    engine = FakeEngine()
    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    with Client.in_process(engine=engine) as client:
        client.describe([red, blue], prompt="Compare <ImageHere> with <ImageHere>.")
        with pytest.raises(InvalidRequest, match="1 <ImageHere> marker"):
            client.describe([red, blue], prompt="Only <ImageHere>")
    parts = engine.requests[0].messages[0].parts
    assert [p.text if isinstance(p, TextPart) else p.image.rgb[:3] for p in parts] == [
        "Compare ",
        b"\xff\x00\x00",
        " with ",
        b"\x00\x00\xff",
        ".",
    ]


def test_a_corrupt_file_is_an_image_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(page_png()[:200])
    with Client.in_process(engine=FakeEngine()) as client, pytest.raises(ImageError) as caught:
        client.describe(path)
    assert caught.value.message.startswith(f"{path}: truncated or corrupt PNG")


def test_stream_yields_the_words_and_stopping_early_frees_the_slot() -> None:
    engine = FakeEngine(reply="one two three four five", token_delay_s=0.01, n_slots=1)
    with Client.in_process(engine=engine) as client:
        with client.stream(page_png()) as stream:
            assert next(stream) == "one"
        # The only slot is free again: a second request runs instead of waiting forever.
        done = threading.Event()
        worker = threading.Thread(target=lambda: (client.describe(page_png()), done.set()))
        worker.start()
        assert done.wait(5)
        with client.stream(page_png()) as stream:
            assert "".join(stream) == "one two three four five" == stream.result.text


def test_a_client_that_loaded_its_engine_closes_it() -> None:
    from pagescribe.client.local import LocalTransport

    engine = FakeEngine()
    Client(LocalTransport(engine, owned=True)).close()
    assert engine.closed
