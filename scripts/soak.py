#!/usr/bin/env python3
"""Load and soak a pagescribe server: N clients on loopback for M minutes, good and bad requests mixed.

Not a CI test: run it by hand (or in a nightly job) and keep the JSON it writes.

    python scripts/soak.py --model ~/.cache/pagescribe/test-models/tiny-seed0 --clients 8 --minutes 3

starts ``pagescribe serve`` on that model (or use ``--url`` and ``--pid`` for a server already running), then
every client loops over a weighted mix: dialog and chat requests, streams read to the end, streams dropped
after the first piece, JSON Lines batches with a broken record, malformed JSON, bad images, unknown
parameters and bodies over the size limit. Each answer is checked against what the contract promises for
that kind of request. Meanwhile ``/ping`` is timed twice a second and the server's resident memory sampled.

It passes (exit status 0) when there were no unexpected answers (wrong status, 5xx, a 503 without
``Retry-After``, a timeout, a dropped connection), every ``/ping`` answered 200 within 2 s (p99 and max),
and memory at the end is within ``--rss-growth-mib`` of where it was after the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

MiB = 1024 * 1024
BODY_LIMIT = 2 * MiB  # the server under test is started with this limit, so "too large" stays cheap
PING_BUDGET_S = 2.0


@dataclass
class Tally:
    """Everything the run observed."""

    started: float = field(default_factory=time.monotonic)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    unexpected_count: int = 0
    overloaded: int = 0
    missing_retry_after: int = 0
    ping_ms: list[float] = field(default_factory=list)
    ping_failures: int = 0
    rss: list[tuple[float, int]] = field(default_factory=list)

    def note(self, kind: str, outcome: str) -> None:
        self.statuses.setdefault(kind, Counter())[outcome] += 1

    def wrong(self, kind: str, what: str) -> None:
        self.unexpected_count += 1
        if len(self.unexpected) < 50:
            self.unexpected.append(f"{kind}: {what}")


# -- the request mix ---------------------------------------------------------------------------------------


def page_b64(label: str) -> str:
    image = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(image).text((20, 20), label, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def bodies(max_tokens: int) -> dict[str, tuple[str, bytes, str]]:
    """Kind -> (path, body, content type); built once, so clients spend their time waiting on the server."""
    image = page_b64("Invoice 42")
    dialog = {
        "inputs": [[{"role": "user", "content": "<ImageHere>Describe this page.", "image": image}]],
        "parameters": {"max_tokens": max_tokens},
    }
    chat = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe."},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}},
                ],
            }
        ],
        "max_tokens": max_tokens,
    }
    stream = {**dialog, "parameters": {**dialog["parameters"], "stream": True}}  # type: ignore[dict-item]
    broken = '{"inputs": [[{"role": "user", "content": "x"}]'
    as_json: dict[str, tuple[str, Any]] = {
        "dialog": ("/invocations", dialog),
        "chat": ("/v1/chat/completions", chat),
        "stream": ("/invocations", stream),
        "dropped stream": ("/v1/chat/completions", {**chat, "stream": True}),
        "bad image": ("/invocations", {"inputs": [[{"role": "user", "content": "x", "image": "bm90IGFuIGltYWdl"}]]}),
        "unknown parameter": ("/invocations", {**dialog, "parameters": {"max_tokens": 4, "best_of": 2}}),
        "too large": ("/invocations", {"inputs": [[{"role": "user", "content": "x" * (BODY_LIMIT + 1)}]]}),
    }
    built = {kind: (path, json.dumps(body).encode(), "application/json") for kind, (path, body) in as_json.items()}
    built["malformed JSON"] = ("/invocations", broken.encode(), "application/json")
    lines = "\n".join([json.dumps(dialog), broken, json.dumps(chat)]) + "\n"
    built["batch"] = ("/invocations", lines.encode(), "application/jsonlines")
    return built


#: How often each kind is sent, and the statuses the contract allows for it (503 only as "queue full").
MIX: dict[str, tuple[int, frozenset[int]]] = {
    "dialog": (30, frozenset({200, 503})),
    "chat": (15, frozenset({200, 503})),
    "stream": (10, frozenset({200, 503})),
    "dropped stream": (8, frozenset({200, 503})),
    "batch": (5, frozenset({200, 503})),
    "malformed JSON": (8, frozenset({400})),
    "bad image": (8, frozenset({400})),
    "unknown parameter": (8, frozenset({400})),
    "too large": (8, frozenset({413})),
}


async def one_request(client: httpx.AsyncClient, kind: str, request: tuple[str, bytes, str], tally: Tally) -> int:
    """Send one request and judge the answer; returns its status (0 when there was none)."""
    path, body, content_type = request
    try:
        async with client.stream("POST", path, content=body, headers={"Content-Type": content_type}) as response:
            if kind == "dropped stream" and response.status_code == 200:
                async for _ in response.aiter_bytes():
                    break  # hang up after the first piece
                tally.note(kind, "200 (dropped)")
                return 200
            data = await response.aread()
    except httpx.TimeoutException:
        tally.note(kind, "timeout")
        tally.wrong(kind, "timed out")
        return 0
    except httpx.TransportError as exc:
        tally.note(kind, "transport error")
        tally.wrong(kind, f"{type(exc).__name__}: {exc}")
        return 0
    tally.note(kind, str(response.status_code))
    judge(kind, response.status_code, response.headers, data, tally)
    return response.status_code


def judge(kind: str, status: int, headers: httpx.Headers, data: bytes, tally: Tally) -> None:
    """Compare one answer with what the contract promises for its kind of request."""
    if status not in MIX[kind][1]:
        tally.wrong(kind, f"status {status}: {data[:200]!r}")
    elif status == 503:
        tally.overloaded += 1
        if "retry-after" not in headers:
            tally.missing_retry_after += 1
            tally.wrong(kind, "503 without Retry-After")
    elif status == 200 and kind == "batch":
        rows = [json.loads(line) for line in data.splitlines() if line.strip()]
        errors = [isinstance(row, dict) and "error" in row for row in rows]
        if errors != [False, True, False]:  # only the broken record may fail, never for want of room
            tally.wrong(kind, f"batch lines {errors}: {data[-300:]!r}")
    elif status >= 400:
        error = json.loads(data).get("error", {})
        if not error.get("message") or not error.get("type"):
            tally.wrong(kind, f"no error envelope: {data[:200]!r}")


async def client_loop(
    url: str, requests: dict[str, tuple[str, bytes, str]], end: float, tally: Tally, seed: int
) -> None:
    chance = random.Random(seed)
    kinds, weights = list(MIX), [MIX[k][0] for k in MIX]
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < end:
            kind = chance.choices(kinds, weights)[0]
            if await one_request(client, kind, requests[kind], tally) == 503:
                await asyncio.sleep(chance.uniform(0, 0.2))  # backs off a little, keeping the pressure on


# -- watchers ----------------------------------------------------------------------------------------------


async def ping_loop(url: str, end: float, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=PING_BUDGET_S * 2) as client:
        while time.monotonic() < end:
            began = time.perf_counter()
            try:
                response = await client.get("/ping")
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            tally.ping_ms.append((time.perf_counter() - began) * 1000)
            tally.ping_failures += not ok
            await asyncio.sleep(0.5)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def rss_loop(pid: int | None, end: float, tally: Tally) -> None:
    while pid is not None and time.monotonic() < end:
        tally.rss.append((time.monotonic() - tally.started, rss_bytes(pid)))
        await asyncio.sleep(5)


# -- the run -----------------------------------------------------------------------------------------------


def start_server(model: str, *, queue_size: int, slots: int | None, log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [sys.executable, "-m", "pagescribe.cli", "serve", "--model", model, "--port", str(port), "--ctx", "1024"]
    args += ["--queue-size", str(queue_size), *(["--slots", str(slots)] if slots else [])]
    env = {**os.environ, "PAGESCRIBE_MAX_BODY_BYTES": str(BODY_LIMIT)}
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env)
    return f"http://127.0.0.1:{port}", process


def wait_ready(url: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready within {timeout} s")


async def warm_up(url: str, requests: dict[str, tuple[str, bytes, str]]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for kind in MIX:
            for _ in range(3):
                await one_request(client, kind, requests[kind], Tally())


async def soak(args: argparse.Namespace, url: str, pid: int | None) -> Tally:
    requests = bodies(args.max_tokens)
    await warm_up(url, requests)
    tally = Tally()
    end = time.monotonic() + args.minutes * 60
    runs: list[Awaitable[None]] = [client_loop(url, requests, end, tally, seed=n) for n in range(args.clients)]
    watchers: list[Callable[[], Awaitable[None]]] = [
        lambda: ping_loop(url, end, tally),
        lambda: rss_loop(pid, end, tally),
    ]
    await asyncio.gather(*runs, *(w() for w in watchers))
    if pid is not None:
        tally.rss.append((time.monotonic() - tally.started, rss_bytes(pid)))
    return tally


def summarize(args: argparse.Namespace, tally: Tally) -> dict[str, Any]:
    pings = sorted(tally.ping_ms)
    p99 = pings[min(len(pings) - 1, int(len(pings) * 0.99))] if pings else float("nan")
    rss = [r for _, r in tally.rss]
    requests = sum(sum(c.values()) for c in tally.statuses.values())
    summary: dict[str, Any] = {
        "clients": args.clients,
        "minutes": args.minutes,
        "requests": requests,
        "requests_per_s": round(requests / (args.minutes * 60), 2),
        "unexpected": tally.unexpected_count,
        "unexpected_examples": tally.unexpected[:10],
        "queue_full_503": tally.overloaded,
        "queue_full_without_retry_after": tally.missing_retry_after,
        "by_kind": {kind: dict(c) for kind, c in sorted(tally.statuses.items())},
        "ping": {
            "count": len(pings),
            "failures": tally.ping_failures,
            "p50_ms": round(statistics.median(pings), 1) if pings else None,
            "p99_ms": round(p99, 1),
            "max_ms": round(pings[-1], 1) if pings else None,
        },
        "rss_mib": {
            "start": round(rss[0] / MiB, 1) if rss else None,
            "end": round(rss[-1] / MiB, 1) if rss else None,
            "max": round(max(rss) / MiB, 1) if rss else None,
            # The first minute holds the warm-up of every slot; growth after it is what a leak would show.
            "after_first_minute": next((round(r / MiB, 1) for t, r in tally.rss if t >= 60), None),
            "samples": [[round(t), round(r / MiB, 1)] for t, r in tally.rss],
        },
    }
    grew = (rss[-1] - rss[0]) / MiB if rss else 0.0
    summary["pass"] = (
        tally.unexpected_count == 0
        and tally.ping_failures == 0
        and bool(pings)
        and pings[-1] < PING_BUDGET_S * 1000
        and grew <= args.rss_growth_mib
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="start `pagescribe serve` on this model (a GGUF pair's folder)")
    where.add_argument("--url", help="soak a server that is already running")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for its memory")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--max-tokens", type=int, default=16, help="tokens per answer")
    parser.add_argument("--queue-size", type=int, default=2, help="small, so a full queue (503) happens")
    parser.add_argument("--slots", type=int, help="slots of the started server [default: its own]")
    parser.add_argument("--rss-growth-mib", type=float, default=64.0, help="allowed memory growth")
    parser.add_argument("--out", type=Path, default=Path("build/soak/soak.json"), help="where to write the figures")
    args = parser.parse_args()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    process = None
    if args.model:
        log = args.out.with_suffix(".server.log")
        url, process = start_server(args.model, queue_size=args.queue_size, slots=args.slots, log=log)
        pid: int | None = process.pid
    else:
        url, pid = args.url.rstrip("/"), args.pid
    try:
        wait_ready(url)
        tally = asyncio.run(soak(args, url, pid))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=60)
    summary = summarize(args, tally)
    if process is not None:
        summary["server_exit_status"] = process.returncode
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    ping, rss = summary["ping"], summary["rss_mib"]
    print(
        f"{summary['clients']} clients, {summary['minutes']} min: {summary['requests']} requests "
        f"({summary['requests_per_s']}/s), {summary['unexpected']} unexpected, "
        f"{summary['queue_full_503']} queue-full 503 "
        f"({summary['queue_full_without_retry_after']} without Retry-After); "
        f"/ping p99 {ping['p99_ms']} ms, max {ping['max_ms']} ms, {ping['failures']} failed; "
        f"RSS {rss['start']} -> {rss['end']} MiB (max {rss['max']}); {'PASS' if summary['pass'] else 'FAIL'}"
    )
    print(f"figures written to {args.out}")
    raise SystemExit(0 if summary["pass"] else 1)


if __name__ == "__main__":
    main()
