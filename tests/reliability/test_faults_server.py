"""Faults around a running server: clients that leave, SIGTERM mid-work, broken model files, a failing engine.

Each server runs in its own process, as in a container; what the tests look at is what an operator or a
client sees: HTTP answers, ``/metrics``, the exit status and the JSON log.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from liveserver import ServerProcess, running, serve_fake, serve_tiny, wait_until

from pagescribe.models.files import ModelFiles

BUSY = "pagescribe_busy_slots"
CANCELLED = 'pagescribe_generations_total{finish_reason="cancelled"}'
LONG_REPLY = " ".join(["tok"] * 400)  # 20 s at 0.05 s a token: only a disconnect ends it early


def dialog(text: str = "Describe.", **parameters: Any) -> dict[str, Any]:
    return {"inputs": [[{"role": "user", "content": text}]], "parameters": parameters}


def chat(text: str = "Describe.", **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **fields}


# -- a client that leaves ----------------------------------------------------------------------------------


def _leave_after_first_piece(url: str, body: dict[str, Any]) -> None:
    with httpx.stream("POST", url, json=body, timeout=10) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # the answer has begun; now hang up


def _give_up_waiting(url: str, body: dict[str, Any]) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=body, timeout=0.5)


STREAMS: dict[str, Callable[[str], None]] = {
    "format A on /invocations": lambda base: _leave_after_first_piece(f"{base}/invocations", dialog(stream=True)),
    "OpenAI server-sent events": lambda base: _leave_after_first_piece(
        f"{base}/v1/chat/completions", chat(stream=True)
    ),
    "AWS event stream": lambda base: _leave_after_first_piece(
        f"{base}/endpoints/e/invocations-response-stream", dialog(stream=True)
    ),
    "non-streamed, client gives up": lambda base: _give_up_waiting(f"{base}/invocations", dialog()),
}


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    log_path = tmp_path_factory.mktemp("disconnect") / "server.log"
    engine = {"reply": LONG_REPLY, "token_delay_s": 0.05, "queue_size": 4}
    with running(serve_fake(log_path=log_path, engine=engine)) as server:
        server.wait_for_ping(200)
        yield server


@pytest.mark.parametrize("how", list(STREAMS))
def test_a_client_that_leaves_frees_its_slot_at_once(slow_server: ServerProcess, how: str) -> None:
    cancelled = slow_server.metric(CANCELLED)
    STREAMS[how](slow_server.url)
    left = time.monotonic()
    freed_after = wait_until(lambda: slow_server.metric(BUSY) == 0, timeout=3, what="the slot to free")
    assert slow_server.metric(CANCELLED) == cancelled + 1
    # The only slot is free again: the next request starts at once instead of waiting 20 s.
    started = time.monotonic()
    response = httpx.post(f"{slow_server.url}/invocations", json=dialog(max_tokens=3), timeout=10)
    assert response.status_code == 200 and response.json()[0]["finish_reason"] == "length"
    assert freed_after < 1.0 and time.monotonic() - started < 2, (time.monotonic() - left, freed_after)


def test_a_queued_request_whose_client_left_never_runs(slow_server: ServerProcess) -> None:
    cancelled = slow_server.metric(CANCELLED)
    answered = [slow_server.metric(f'pagescribe_generations_total{{finish_reason="{r}"}}') for r in ("stop", "length")]
    with httpx.stream("POST", f"{slow_server.url}/invocations", json=dialog(stream=True), timeout=10) as first:
        pieces = first.iter_bytes()  # kept: a dropped iterator closes the response
        next(pieces)  # the only slot is taken
        _give_up_waiting(f"{slow_server.url}/invocations", dialog(max_tokens=3))  # queued, then abandoned
    wait_until(
        lambda: slow_server.metric(BUSY) == 0 and slow_server.metric("pagescribe_queue_depth") == 0,
        timeout=3,
        what="the slot and the queue to empty",
    )
    assert slow_server.metric(CANCELLED) == cancelled + 1  # only the stream: the queued one never started
    after = [slow_server.metric(f'pagescribe_generations_total{{finish_reason="{r}"}}') for r in ("stop", "length")]
    assert after == answered


def test_a_batch_accepted_while_the_queue_is_full_still_answers_every_record(tmp_path: Path) -> None:
    engine = {"reply": " ".join(["w"] * 20), "token_delay_s": 0.03, "queue_size": 0}
    server = serve_fake(log_path=tmp_path / "server.log", engine=engine)
    records = "\n".join(json.dumps(dialog(f"record {n}")) for n in range(4)) + "\n"
    with running(server):
        server.wait_for_ping(200)
        with httpx.stream("POST", f"{server.url}/invocations", json=dialog(stream=True), timeout=30) as busy:
            pieces = busy.iter_bytes()
            next(pieces)  # the only slot is busy and there is no queue: single requests get 503 now
            refused = httpx.post(f"{server.url}/invocations", json=dialog(), timeout=10)
            batch = httpx.post(
                f"{server.url}/invocations",
                content=records.encode(),
                headers={"Content-Type": "application/jsonlines"},
                timeout=60,
            )
    assert refused.status_code == 503 and "Retry-After" in refused.headers
    rows = [json.loads(line) for line in batch.text.splitlines()]
    assert batch.status_code == 200 and len(rows) == 4
    assert all(isinstance(row, list) and row[0]["finish_reason"] == "stop" for row in rows), rows


# -- SIGTERM -----------------------------------------------------------------------------------------------


def test_sigterm_lets_every_request_in_flight_finish_then_exits_0(tmp_path: Path) -> None:
    engine = {"reply": " ".join(["w"] * 30), "token_delay_s": 0.04, "n_slots": 2}
    server = serve_fake(log_path=tmp_path / "server.log", engine=engine, settings={"shutdown_timeout_s": 20})
    results: dict[str, Any] = {}

    def post(name: str, path: str, body: dict[str, Any]) -> None:
        results[name] = httpx.post(f"{server.url}{path}", json=body, timeout=30)

    with running(server):
        server.wait_for_ping(200)
        threads = [
            threading.Thread(target=post, args=("a", "/invocations", dialog())),
            threading.Thread(target=post, args=("b", "/v1/chat/completions", chat())),
            threading.Thread(target=post, args=("queued", "/invocations", dialog())),
        ]
        with httpx.stream("POST", f"{server.url}/invocations", json=dialog(stream=True), timeout=30) as streamed:
            lines = streamed.iter_lines()
            first = next(lines)
            for thread in threads:
                thread.start()
            wait_until(lambda: server.metric("pagescribe_queue_depth") >= 2, timeout=5, what="a queue")
            server.process.send_signal(signal.SIGTERM)
            rest = list(lines)
            time.sleep(0.3)
            with pytest.raises(httpx.TransportError):  # no new work once the shutdown began
                httpx.post(f"{server.url}/invocations", json=dialog(), timeout=2)
        for thread in threads:
            thread.join(30)
        status = server.terminate(timeout=30)
        log = server.log()
    assert status == 0
    final = json.loads(rest[-1])
    assert final["finish_reason"] == "stop" and len([first, *rest]) == 31
    assert [results[n].status_code for n in ("a", "b", "queued")] == [200, 200, 200]
    assert results["a"].json()[0]["usage"]["completion_tokens"] == 30
    assert results["b"].json()["choices"][0]["finish_reason"] == "stop"
    assert all(json.loads(line) for line in log.splitlines() if line.strip())
    assert "Shutting down" in log


@pytest.mark.integration
def test_sigterm_on_the_real_server_finishes_the_generation_and_exits_0(tiny_model: ModelFiles, tmp_path: Path) -> None:
    server = serve_tiny(tiny_model.text.parent, log_path=tmp_path / "server.log")
    with running(server):
        server.wait_for_ping(200)
        body = {
            "inputs": [[{"role": "user", "content": "Describe."}]],
            "parameters": {"max_tokens": 400, "stream": True},
        }
        with httpx.stream("POST", f"{server.url}/invocations", json=body, timeout=60) as response:
            lines = response.iter_lines()
            first = next(lines)
            server.process.send_signal(signal.SIGTERM)
            rest = list(lines)
        assert server.terminate(timeout=30) == 0
    tokens = [json.loads(line) for line in [first, *rest]]
    final = tokens.pop()
    assert final["finish_reason"] == "length" and final["usage"]["completion_tokens"] == 400
    assert "".join(t["token"]["text"] for t in tokens) == final["generated_text"]


# -- broken model files ------------------------------------------------------------------------------------


def _truncated_copy(model: ModelFiles, where: Path, victim: str) -> Path:
    folder = where / "model"
    folder.mkdir()
    for path in (model.text, model.mmproj):
        shutil.copy(path, folder / path.name)
    broken = folder / (model.text.name if victim == "text" else model.mmproj.name)
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 3])
    return folder


@pytest.mark.integration
@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        ("missing", "no such file or directory"),
        ("truncated text model", "truncated"),
        ("truncated projector", "truncated"),
    ],
)
def test_a_broken_model_keeps_the_server_up_saying_why(
    tiny_model: ModelFiles, tmp_path: Path, problem: str, reason: str
) -> None:
    if problem == "missing":
        folder = tmp_path / "nothing-here"
    else:
        folder = _truncated_copy(tiny_model, tmp_path, "text" if "text" in problem else "mmproj")
    server = serve_tiny(folder, log_path=tmp_path / "server.log")
    with running(server):
        ping = wait_until_failed(server)
        assert ping.status_code == 503 and reason in ping.json()["reason"]
        time.sleep(1.5)  # no crash loop: still up, still saying why
        assert server.process.poll() is None
        again = server.ping()
        assert again is not None and again.json() == ping.json()
        refused = httpx.post(f"{server.url}/invocations", json=dialog(), timeout=10)
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "model_not_ready"
        assert int(refused.headers["Retry-After"]) > 0
        assert server.terminate() == 0
        log = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    [unavailable] = [line for line in log if line["message"] == "model unavailable"]
    assert unavailable["level"] == "error" and reason in unavailable["reason"]


def wait_until_failed(server: ServerProcess) -> httpx.Response:
    answers: list[httpx.Response] = []

    def failed() -> bool:
        response = server.ping()
        if response is not None and response.json().get("status") == "failed":
            answers.append(response)
        return bool(answers)

    wait_until(failed, timeout=30, what="/ping to say failed")
    return answers[0]


# -- an engine failure -------------------------------------------------------------------------------------


def test_an_engine_failure_fails_only_its_own_request(tmp_path: Path) -> None:
    # Room for all 21 calls at once: this test is about isolating failures, not about shedding load.
    engine = {"fail_on": "EXPLODE", "n_slots": 2, "token_delay_s": 0.005, "queue_size": 32}
    server = serve_fake(log_path=tmp_path / "server.log", engine=engine)
    calls = [
        ("/invocations", dialog("EXPLODE now"), 500),
        ("/invocations", dialog("EXPLODE", stream=True), 500),
        ("/v1/chat/completions", chat("please EXPLODE"), 500),
        ("/v1/chat/completions", chat("EXPLODE", stream=True), 500),
        ("/invocations", dialog(), 200),
        ("/v1/chat/completions", chat(), 200),
        ("/invocations", dialog(stream=True), 200),
    ] * 3
    answers: list[tuple[int, httpx.Response]] = []

    def call(path: str, body: dict[str, Any], expected: int) -> None:
        answers.append((expected, httpx.post(f"{server.url}{path}", json=body, timeout=30)))

    with running(server):
        server.wait_for_ping(200)
        threads = [threading.Thread(target=call, args=c) for c in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        batch = httpx.post(
            f"{server.url}/invocations",
            content="\n".join(json.dumps(b) for b in (dialog(), dialog("EXPLODE"), chat())).encode(),
            headers={"Content-Type": "application/jsonlines"},
            timeout=30,
        )
        after = httpx.post(f"{server.url}/invocations", json=dialog(), timeout=30)
        ping = server.ping()
        busy = server.metric("pagescribe_busy_slots")
        failures = server.metric('pagescribe_requests_total{route="/invocations",status="500"}')
        log = server.log()
    assert len(answers) == len(calls)
    for expected, response in answers:
        assert response.status_code == expected, response.text
        if expected == 500:
            assert response.json()["error"]["type"] == "server_error"
            assert response.json()["error"]["message"] == "internal error"
    rows = [json.loads(line) for line in batch.text.splitlines()]
    assert "generated_text" in rows[0][0] and rows[1]["error"]["message"] == "internal error" and rows[2]["choices"]
    assert after.status_code == 200 and ping is not None and ping.status_code == 200
    assert busy == 0 and failures == 6
    assert "scripted failure" in log  # the details are in the log, not in the answer


def test_a_connection_that_sends_garbage_does_not_disturb_the_others(tmp_path: Path) -> None:
    with running(serve_fake(log_path=tmp_path / "server.log")) as server:
        server.wait_for_ping(200)
        for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET / HTTP/9.9\r\n\r\n", b"\r\n" * 5000):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(garbage)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
        assert httpx.post(f"{server.url}/invocations", json=dialog(), timeout=10).status_code == 200
        assert server.process.poll() is None
