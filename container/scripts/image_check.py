#!/usr/bin/env python3
"""Check a running pagescribe container from outside, as SageMaker and its clients see it.

    python image_check.py http://127.0.0.1:PORT [--inspect IMAGE_CONFIG.json] [--ready-timeout S]

Run by image-test.sh with the project's virtualenv (httpx and Pillow). It waits for ``/ping``, then checks the
dialog-batch request, streaming, ``/execution-parameters`` and a rejected request, and prints one line per check.
With ``--inspect`` (the output of ``podman image inspect``) it also checks the image's configuration.
Exit status: 0 when every check passed.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

MAX_TOKENS = 12


class CheckFailed(AssertionError):
    """A check saw something other than what the contract promises."""


def expect(condition: bool, message: str) -> None:
    """Raise ``CheckFailed(message)`` unless ``condition``."""
    if not condition:
        raise CheckFailed(message)


def page_png(label: str) -> str:
    """A small page image with ``label`` drawn on it, as base64."""
    image = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(image).text((6, 24), label, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def dialog(label: str) -> list[dict[str, str]]:
    """One format A dialog: a page image at the ``<ImageHere>`` marker and an instruction."""
    return [{"role": "user", "content": f"<ImageHere>Transcribe page {label}.", "image": page_png(label)}]


def wait_ready(client: httpx.Client, *, timeout_s: float) -> float:
    """Poll ``/ping`` until it answers 200; return the seconds it took."""
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < timeout_s:
        try:
            response = client.get("/ping", timeout=2)
            if response.status_code == 200:
                return time.monotonic() - start
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise CheckFailed(f"/ping not 200 after {timeout_s:.0f} s (last: {last})")


def check_ping(client: httpx.Client) -> str:
    """``GET /ping`` is 200 within SageMaker's 2 s."""
    start = time.monotonic()
    response = client.get("/ping", timeout=2)
    expect(response.status_code == 200, f"/ping answered {response.status_code}")
    return f"{(time.monotonic() - start) * 1000:.0f} ms"


def check_dialog_batch(client: httpx.Client) -> str:
    """Two dialogs in, two answers out, in order, each with text, a finish reason and usage."""
    body = {"inputs": [dialog("one"), dialog("two")], "parameters": {"max_tokens": MAX_TOKENS, "temperature": 0}}
    response = client.post("/invocations", json=body, timeout=60)
    expect(response.status_code == 200, f"/invocations answered {response.status_code}: {response.text[:300]}")
    answers = response.json()
    expect(isinstance(answers, list) and len(answers) == 2, f"expected a list of 2 answers, got {answers!r:.300}")
    for item in answers:
        expect(isinstance(item.get("generated_text"), str), f"no generated_text in {item!r:.300}")
        expect(item["generation"]["content"] == item["generated_text"], "generation.content != generated_text")
        expect(item.get("finish_reason") in {"stop", "length"}, f"finish_reason {item.get('finish_reason')!r}")
        usage = item.get("usage", {})
        expect(0 < usage.get("completion_tokens", 0) <= MAX_TOKENS, f"completion_tokens out of range: {usage}")
        expect(usage.get("prompt_tokens", 0) > 0, f"no prompt tokens counted: {usage}")
    return f"{len(answers)} answers, {sum(a['usage']['completion_tokens'] for a in answers)} tokens"


def check_streaming(client: httpx.Client) -> str:
    """``stream: true`` gives token lines, then a final line whose text is the tokens joined."""
    body = {"inputs": [dialog("three")], "parameters": {"max_tokens": MAX_TOKENS, "temperature": 0, "stream": True}}
    with client.stream("POST", "/invocations", json=body, timeout=60) as response:
        expect(response.status_code == 200, f"streamed /invocations answered {response.status_code}")
        expect(response.headers.get("transfer-encoding") == "chunked", "the stream is not chunked")
        records = [json.loads(line) for line in response.iter_lines() if line.strip()]
    tokens = [r["token"]["text"] for r in records if "token" in r]
    finals = [r for r in records if "generated_text" in r]
    expect(len(tokens) > 0, f"no token lines in {records!r:.300}")
    expect(len(finals) == 1 and records[-1] is finals[0], "the stream does not end with one final line")
    expect(finals[0]["generated_text"] == "".join(tokens), "the final text is not the streamed tokens joined")
    expect(finals[0].get("finish_reason") in {"stop", "length"}, f"finish_reason {finals[0].get('finish_reason')!r}")
    return f"{len(tokens)} token lines + final line"


def check_execution_parameters(client: httpx.Client) -> str:
    """Batch transform's ``/execution-parameters`` answers with SageMaker's three keys."""
    response = client.get("/execution-parameters", timeout=5)
    expect(response.status_code == 200, f"/execution-parameters answered {response.status_code}")
    params = response.json()
    expect(params.get("BatchStrategy") == "MULTI_RECORD", f"unexpected {params}")
    expect({"MaxConcurrentTransforms", "MaxPayloadInMB"} <= params.keys(), f"missing keys in {params}")
    return json.dumps(params)


def check_rejects_bad_request(client: httpx.Client) -> str:
    """An unknown parameter is a 400 JSON error, and the server keeps serving."""
    body = {"inputs": [dialog("four")], "parameters": {"max_tokens": 4, "no_such_parameter": 1}}
    response = client.post("/invocations", json=body, timeout=30)
    expect(response.status_code == 400, f"expected 400, got {response.status_code}")
    expect(response.json()["error"]["type"], "the error body has no type")
    expect(client.get("/ping", timeout=2).status_code == 200, "/ping not 200 after a rejected request")
    return f"400 {response.json()['error']['type']}"


def check_image_config(inspect: Any) -> str:
    """Exec-form ``serve`` entrypoint, port 8080, labels and a health check, as the contract needs."""
    image = inspect[0] if isinstance(inspect, list) else inspect
    config = image.get("Config", {})
    expect(config.get("Entrypoint") == ["/opt/program/serve"], f"Entrypoint is {config.get('Entrypoint')}")
    expect(config.get("Cmd") == ["serve"], f"Cmd is {config.get('Cmd')}")
    expect("8080/tcp" in (config.get("ExposedPorts") or {}), "port 8080 is not exposed")
    labels = config.get("Labels") or image.get("Labels") or {}
    for key in ("org.opencontainers.image.version", "org.opencontainers.image.source"):
        expect(bool(labels.get(key)), f"label {key} missing")
    # docker keeps it in Config.Healthcheck, podman at the top level
    health = config.get("Healthcheck") or image.get("Healthcheck") or {}
    expect(bool(health.get("Test")), "no HEALTHCHECK")
    version, revision = labels["org.opencontainers.image.version"], labels.get("org.opencontainers.image.revision")
    return f"version {version}, revision {revision}"


def main(argv: list[str] | None = None) -> int:
    """Run every check against the container at URL; print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--inspect", type=Path, help="podman/docker image inspect output (JSON)")
    parser.add_argument("--ready-timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    failed = 0
    with httpx.Client(base_url=args.url) as client:
        checks: list[tuple[str, Any]] = []
        if args.inspect:
            config = json.loads(args.inspect.read_text())
            checks.append(("image config", lambda: check_image_config(config)))
        checks.append(("ready", lambda: f"/ping 200 after {wait_ready(client, timeout_s=args.ready_timeout):.1f} s"))
        checks += [
            ("ping", lambda: check_ping(client)),
            ("dialog batch", lambda: check_dialog_batch(client)),
            ("streaming", lambda: check_streaming(client)),
            ("execution parameters", lambda: check_execution_parameters(client)),
            ("bad request", lambda: check_rejects_bad_request(client)),
        ]
        for name, check in checks:
            try:
                print(f"ok   {name}: {check()}", flush=True)
            except (CheckFailed, httpx.HTTPError, ValueError, KeyError) as exc:
                failed += 1
                print(f"FAIL {name}: {exc}", flush=True)
                if name == "ready":
                    break
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
