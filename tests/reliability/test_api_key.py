"""Optional API-key auth for standalone use: every route but the health and batch-parameter ones needs the key."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from liveserver import free_port, wait_until

from pagescribe.engine.fake import FakeEngine
from pagescribe.server import ServerSettings, create_app
from pagescribe.server.logging import JsonFormatter
from pagescribe.server.run import make_server

KEY = "ps-test-7f3a9c1e2b"
DIALOG = {"inputs": [[{"role": "user", "content": "Describe."}]]}
CHAT = {"messages": [{"role": "user", "content": "Describe."}]}
PROTECTED = [
    ("POST", "/invocations", DIALOG),
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/endpoints/e/invocations", DIALOG),
    ("POST", "/endpoints/e/invocations-response-stream", DIALOG),
    ("GET", "/v1/models", None),
    ("GET", "/metrics", None),
    ("GET", "/openapi.json", None),
]


@asynccontextmanager
async def serve(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerSettings(**settings), FakeEngine())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sm") as client,
    ):
        while (await client.get("/ping")).status_code != 200:
            await asyncio.sleep(0.01)
        yield client


async def call(client: httpx.AsyncClient, method: str, path: str, body: Any, **headers: str) -> httpx.Response:
    return await client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_without_the_key_every_other_route_is_401(method: str, path: str, body: Any) -> None:
    async with serve(api_key=KEY) as client:
        missing = await call(client, method, path, body)
        wrong = await call(client, method, path, body, Authorization="Bearer not-the-key")
        wrong_header = await call(client, method, path, body, **{"X-Api-Key": KEY + "x"})
        right = await call(client, method, path, body, Authorization=f"Bearer {KEY}")
    for refused in (missing, wrong, wrong_header):
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        error = refused.json()["error"]
        assert error["type"] == "authentication_error" and error["param"] is None
        assert error.get("code", 401) == 401 and KEY not in refused.text
    assert "required" in missing.json()["error"]["message"]
    assert "not valid" in wrong.json()["error"]["message"]
    assert right.status_code == 200


async def test_health_and_batch_parameters_stay_open() -> None:
    async with serve(api_key=KEY) as client:
        assert (await client.get("/ping")).status_code == 200
        assert (await client.get("/execution-parameters")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer  {KEY} "}, {"X-Api-Key": KEY}],
    ids=["bearer", "lowercase bearer, extra spaces", "x-api-key"],
)
async def test_the_key_is_accepted_in_either_header(headers: dict[str, str]) -> None:
    async with serve(api_key=KEY) as client:
        response = await client.post("/invocations", json=DIALOG, headers=headers)
    assert response.status_code == 200 and response.json()[0]["generated_text"]


async def test_no_key_configured_means_no_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGESCRIBE_API_KEY", "   ")  # set but blank: not a key nobody could send
    async with serve() as client:
        assert (await client.post("/invocations", json=DIALOG)).status_code == 200


async def test_the_key_comes_from_the_environment_and_never_reaches_the_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAGESCRIBE_API_KEY", KEY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        async with serve() as client:
            refused = await client.post("/invocations", json=DIALOG, headers={"X-Api-Key": "guess"})
            allowed = await client.post("/invocations", json=DIALOG, headers={"Authorization": f"Bearer {KEY}"})
            metrics = await client.get("/metrics", headers={"X-Api-Key": KEY})
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert (refused.status_code, allowed.status_code) == (401, 200)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [denied] = [line for line in lines if line.get("status") == 401]
    assert denied["error"] == "authentication_error" and denied["route"] == "/invocations"
    assert KEY not in stream.getvalue() and "guess" not in stream.getvalue()
    assert 'pagescribe_requests_total{route="/invocations",status="401"} 1.0' in metrics.text


@pytest.fixture
def live_with_key() -> Iterator[str]:
    port = free_port()
    server = make_server(ServerSettings(host="127.0.0.1", port=port, api_key=KEY), FakeEngine())
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _ready(url), timeout=20, what="the server")
    yield url
    server.should_exit = True
    thread.join(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_the_refusal_comes_before_the_body_is_read(live_with_key: str) -> None:
    port = int(live_with_key.rsplit(":", 1)[1])
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {10**10}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"{")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401")


def test_the_openai_client_with_the_key_works_and_without_it_is_told_why(live_with_key: str) -> None:
    openai = pytest.importorskip("openai")
    good = openai.OpenAI(base_url=f"{live_with_key}/v1", api_key=KEY, max_retries=0)
    answer = good.chat.completions.create(model="any", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    bad = openai.OpenAI(base_url=f"{live_with_key}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert info.value.status_code == 401 and "not valid" in str(info.value)
