"""Request bodies: images sent as they are when they fit, downsized with a warning when they do not."""

from __future__ import annotations

import base64
import io
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_client_support import noisy_page_png, page_png

from pagescribe.client import payload
from pagescribe.client.payload import ImageDownsizedWarning, base64_size
from pagescribe.client.transport import CHECK_LIMITS, make_request
from pagescribe.errors import ImageError, PayloadTooLarge
from pagescribe.types import ImageInput

PARAMS: Any = {"max_tokens": 64, "temperature": 0.0}


def build_body(prompt: str, images: list[Any], parameters: Any, **options: Any) -> bytes:
    """The body a remote transport sends for what ``Client.describe`` was given."""
    return payload.build_body(make_request(images, prompt, parameters, limits=CHECK_LIMITS), **options)


def message_of(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    [[message]] = data["inputs"]
    assert data["parameters"] == PARAMS
    return message


def decoded(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text, validate=True)))


def test_a_file_that_fits_is_sent_byte_for_byte_as_standard_base64(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    path.write_bytes(page_png())
    message = message_of(build_body("Describe.", [path], PARAMS))
    assert message == {"role": "user", "content": "Describe.", "image": base64.b64encode(path.read_bytes()).decode()}


def test_bytes_and_pil_images_go_in_order_under_images() -> None:
    png = page_png(text="first")
    pil = Image.new("RGB", (40, 30), (10, 200, 30))
    message = message_of(build_body("<ImageHere> vs <ImageHere>", [png, pil], PARAMS))
    first, second = message["images"]
    assert base64.b64decode(first) == png
    assert decoded(second).format == "PNG" and decoded(second).getpixel((5, 5)) == (10, 200, 30)
    assert message["content"] == "<ImageHere> vs <ImageHere>" and "image" not in message


def test_a_decoded_image_input_is_sent_as_png() -> None:
    image = ImageInput(2, 1, bytes([255, 0, 0, 0, 0, 255]))
    message = message_of(build_body("x", [image], PARAMS))
    assert decoded(message["image"]).convert("RGB").tobytes() == image.rgb


def test_a_bmp_travels_as_lossless_png(tmp_path: Path) -> None:
    pil = Image.new("RGB", (64, 48), (1, 2, 3))
    pil.putpixel((10, 10), (250, 5, 5))
    path = tmp_path / "scan.bmp"
    pil.save(path, "BMP")
    sent = decoded(message_of(build_body("x", [path], PARAMS))["image"])
    assert sent.format == "PNG" and sent.convert("RGB").tobytes() == pil.tobytes()


def test_a_page_over_the_limit_is_downsized_with_its_aspect_and_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(noisy_page_png(600, 450))  # ~0.8 MB, ~1.1 MB as base64
    with pytest.warns(ImageDownsizedWarning) as caught:
        body = build_body("Describe.", [path], PARAMS, payload_limit=500_000)
    assert len(body) <= 500_000
    sent = decoded(message_of(body)["image"])
    assert sent.format == "PNG" and sent.width < 600
    assert sent.width / sent.height == pytest.approx(600 / 450, rel=0.01)
    [warning] = caught
    assert str(path) in str(warning.message) and "600x450" in str(warning.message)
    assert f"{sent.width}x{sent.height}" in str(warning.message) and "0.5 MB payload limit" in str(warning.message)


def test_a_jpeg_photo_stays_jpeg_when_downsized() -> None:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(noisy_page_png(500, 500))).save(buffer, "JPEG", quality=95)
    with pytest.warns(ImageDownsizedWarning):
        body = build_body("x", [buffer.getvalue()], PARAMS, payload_limit=200_000)
    assert len(body) <= 200_000 and decoded(message_of(body)["image"]).format == "JPEG"


def test_small_images_keep_their_bytes_while_the_big_one_takes_the_rest_of_the_budget() -> None:
    small, big = page_png(text="small"), noisy_page_png(500, 400)
    with pytest.warns(ImageDownsizedWarning) as caught:
        body = build_body("x", [big, small], PARAMS, payload_limit=400_000)
    first, second = message_of(body)["images"]
    assert base64.b64decode(second) == small
    assert len(caught) == 1 and "image 1" in str(caught[0].message)
    # The big image got nearly all that the small one and the JSON left over, not just half of the budget.
    assert base64_size(len(base64.b64decode(first))) > 0.6 * 400_000
    assert len(body) <= 400_000


def test_images_that_fit_cause_no_warning_and_no_limit_means_no_resizing() -> None:
    big = noisy_page_png(400, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert base64.b64decode(message_of(build_body("x", [big], PARAMS, payload_limit=None))["image"]) == big
        assert base64.b64decode(message_of(build_body("x", [big], PARAMS, payload_limit=1_000_000))["image"]) == big


def test_a_prompt_too_long_for_the_limit_is_refused_before_sending() -> None:
    with pytest.raises(PayloadTooLarge, match="before any image is added"):
        build_body("x" * 2000, [page_png()], PARAMS, payload_limit=1000)


def test_an_image_that_cannot_shrink_enough_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match=r"payload limit of 0\.02 MB without shrinking it below 256 pixels"):
        build_body("x", [noisy_page_png(800, 800)], PARAMS, payload_limit=20_000)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (page_png()[:300], "truncated or corrupt PNG"),
        (b"%PDF-1.7\n...", "a PDF document, not an image"),
        (b"hello, this is text", "text, not an image"),
        (b"", "image is empty"),
    ],
)
def test_a_file_that_is_not_a_usable_image_is_a_clear_error_naming_it(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "page.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as caught:
        build_body("x", [path], PARAMS)
    assert caught.value.message.startswith(f"{path}: ") and expected in caught.value.message


def test_a_missing_file_is_an_image_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        build_body("x", [tmp_path / "gone.png"], PARAMS)
