"""Every kind of broken request against ``pagescribe serve`` on the tiny model, as a container runs it.

Each case in ``badrequests.CASES`` gets the status, error type and message the contract promises; odd but
valid inputs are answered. Then the server is shown to be unharmed: after the whole catalogue three more
times a good request succeeds, ``/ping`` is 200, and resident memory is back near where it started. The
log never holds the prompt text or the image bytes.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from badrequests import CASES, CHAT, JSONL, SERVER_ENV, Case, b64, dialog, page_png, user
from liveserver import MiB, ServerProcess, running, serve_tiny
from PIL import Image

from pagescribe.models.files import ModelFiles

pytestmark = pytest.mark.integration

#: What "back near its baseline" means: the growth allowed after the catalogue has run three more times.
#: (Measured: +3 to +6 MiB; over 40 rounds the server levels off about 14 MiB above the baseline.)
RSS_SLACK = 32 * MiB


@pytest.fixture(scope="module")
def server(tiny_model: ModelFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log_path = tmp_path_factory.mktemp("bad-input") / "server.log"
    with running(serve_tiny(tiny_model.text.parent, log_path=log_path, env=SERVER_ENV)) as live:
        live.wait_for_ping(200)
        yield live


def send(server: ServerProcess, case: Case) -> httpx.Response:
    return httpx.post(
        server.url + case.route, content=case.body(), headers={"Content-Type": case.content_type}, timeout=60
    )


def good_request(server: ServerProcess) -> httpx.Response:
    return httpx.post(f"{server.url}/invocations", json=dialog(user("<ImageHere>Describe.", image=b64(page_png()))))


def assert_answered_as_promised(case: Case, response: httpx.Response) -> None:
    assert response.status_code == case.status, response.text[:500]
    if case.lines:
        rows = [json.loads(line) for line in response.text.splitlines()]
        assert [row["error"]["type"] if "error" in row else None for row in rows] == list(case.lines)
        assert all(row["error"]["message"] for row in rows if "error" in row)
        return
    body = response.json()
    if case.status == 200:
        text = body[0]["generated_text"] if isinstance(body, list) else body["choices"][0]["message"]["content"]
        assert isinstance(text, str) and body and "error" not in body
        return
    error = body["error"]
    expected_keys = {"type", "message", "param", "code"} if case.route == CHAT else {"type", "message", "param"}
    assert set(error) == expected_keys
    assert error["type"] == case.error_type
    assert case.message.casefold() in error["message"].casefold(), error["message"]
    if case.route == CHAT:
        assert error["code"] == case.status


@pytest.mark.parametrize("name", list(CASES))
def test_each_bad_request_gets_the_contracts_status_and_a_clear_message(server: ServerProcess, name: str) -> None:
    assert_answered_as_promised(CASES[name], send(server, CASES[name]))


def test_the_catalogue_covers_every_route_and_format() -> None:
    kinds = {(c.route, c.content_type == JSONL) for c in CASES.values()}
    assert kinds == {("/invocations", False), ("/invocations", True), (CHAT, False), (CHAT, True)}
    assert sum(c.status != 200 for c in CASES.values()) >= 40


def test_after_the_catalogue_a_good_request_succeeds_and_memory_is_back(server: ServerProcess) -> None:
    for _ in range(3):  # warm every path (the first image encode allocates llama.cpp's buffers)
        assert good_request(server).status_code == 200
    for case in CASES.values():
        send(server, case)
    baseline = server.rss_bytes()
    samples = []
    for _ in range(3):
        for case in CASES.values():
            assert_answered_as_promised(case, send(server, case))
        samples.append(server.rss_bytes())
    answer = good_request(server)
    assert answer.status_code == 200 and answer.json()[0]["generated_text"]
    assert server.ping() is not None and server.ping().status_code == 200  # type: ignore[union-attr]
    grown = [f"{(s - baseline) / MiB:+.1f} MiB" for s in samples]
    assert max(samples) <= baseline + RSS_SLACK, f"RSS grew from {baseline / MiB:.0f} MiB: {grown}"


def test_the_log_holds_no_prompt_text_and_no_image_bytes(server: ServerProcess) -> None:
    secret = "Quarterly-Revenue-Zanzibar-7731"
    image = Image.new("RGB", (37, 23), (1, 2, 3))
    image.putpixel((5, 5), (250, 1, 99))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    encoded = b64(buffer.getvalue())
    bodies = [
        dialog(user(f"<ImageHere>{secret}", image=encoded)),  # answered
        dialog(user(f"{secret} <ImageHere> <ImageHere>", image=encoded)),  # refused: markers
        dialog(user(secret, image=encoded[:-7] + "@@@")),  # refused: base64
        dialog(user(secret * 400, image=encoded)),  # refused: context
        {"messages": [{"role": "user", "content": [{"type": "text", "text": secret}]}], "temprature": 1},
    ]
    for body in bodies:
        httpx.post(f"{server.url}/invocations", json=body, timeout=60)
    httpx.post(f"{server.url}/v1/chat/completions", json=bodies[-1], timeout=60)
    log = server.log()
    assert '"status": 200' in log and '"status": 400' in log  # the requests were logged...
    assert secret not in log  # ...without their words
    for start in range(0, len(encoded) - 24, 24):
        assert encoded[start : start + 24] not in log  # ...or any run of their image's base64
    assert all(json.loads(line) for line in log.splitlines() if line.strip())


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: ServerProcess) -> None:
    # Declare 3 GiB, send 11 bytes of it, and wait: the 413 must come while the body is still "on its way".
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {3 * 1024 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b'{"inputs": ')
        answer = _read_response(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    assert b"over the limit" in rest


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
