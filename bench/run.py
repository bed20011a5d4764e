"""Throughput benchmark: the same request mix against pagescribe and its peers, in one run, on one machine.

Targets: ``engine`` (pagescribe's engine called in-process), ``pagescribe`` (its server), ``llama-server`` and
``llama-cpp-python`` (their OpenAI servers). Same model files, threads, context and sampling (temperature 0 and
an explicit seed per request). Mixes: ``doc`` (the document prompt, then a distinct page image, N output tokens),
``question`` (a page image and a short question, 16 tokens), ``repeat`` (one page asked again and again).

    python bench/run.py --preset 1b --targets engine,pagescribe,llama-server,llama-cpp-python --concurrency 1,4

Writes bench/results/throughput-<preset>.json and .md (and a .png plot when matplotlib is installed).
Not a test: it takes minutes. Ratios matter more than absolute numbers on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "examples")]

from make_samples import numbered_page  # noqa: E402
from peers import CACHE, SERVERS, peak_rss_mb  # noqa: E402

from pagescribe.models.synth import synthesize  # noqa: E402
from pagescribe.prompts import load_prompt  # noqa: E402


@dataclass(frozen=True)
class Ask:
    text: str
    image_png: bytes
    max_tokens: int
    seed: int
    text_first: bool = True


@dataclass
class Outcome:
    latency_s: float
    ttft_s: float
    completion_tokens: int
    ok: bool
    error: str = ""


def page_png(n: int) -> bytes:
    img = numbered_page(n).resize((640, 905))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def workload(mix: str, n: int, tokens: int, first_seed: int) -> list[Ask]:
    document = load_prompt("document").text
    if mix == "doc":
        return [Ask(document, page_png(first_seed + i), tokens, first_seed + i) for i in range(n)]
    if mix == "question":
        return [Ask("What is the title of this page?", page_png(first_seed + i), 16, first_seed + i, False)
                for i in range(n)]
    if mix == "repeat":
        return [Ask(document, page_png(first_seed), tokens, first_seed) for _ in range(n)]
    if mix == "decode":  # no image and a short prompt: what batching does for generation alone
        return [Ask(f"Write a long report about topic {first_seed + i}.", b"", tokens * 2, first_seed + i)
                for i in range(n)]
    raise SystemExit(f"unknown mix {mix}")


def first_seed(mix: str, level: int) -> int:
    """Distinct pages for every mix and level, the same in every process (str hashes are randomized)."""
    return 1000 * level + {"doc": 0, "question": 300, "repeat": 600, "decode": 900}[mix]


def chat_body(ask: Ask) -> dict[str, Any]:
    url = "data:image/png;base64," + base64.b64encode(ask.image_png).decode()
    parts: list[dict[str, Any]] = [{"type": "text", "text": ask.text}]
    if ask.image_png:
        parts.append({"type": "image_url", "image_url": {"url": url}})
    if not ask.text_first:
        parts.reverse()
    return {
        "messages": [{"role": "user", "content": parts}], "max_tokens": ask.max_tokens, "temperature": 0.0,
        "seed": ask.seed, "stream": True, "stream_options": {"include_usage": True},
    }


def ask_server(client: httpx.Client, url: str, ask: Ask) -> Outcome:
    started = time.perf_counter()
    first = 0.0
    chunks = 0
    usage_tokens = None
    try:
        with client.stream("POST", url + "/v1/chat/completions", json=chat_body(ask)) as response:
            if response.status_code != 200:
                return Outcome(time.perf_counter() - started, 0, 0, False, f"HTTP {response.status_code}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                data = json.loads(line[6:])
                if data.get("usage"):
                    usage_tokens = data["usage"].get("completion_tokens")
                for choice in data.get("choices", []):
                    if choice.get("delta", {}).get("content"):
                        chunks += 1
                        first = first or time.perf_counter()
    except httpx.HTTPError as exc:
        return Outcome(time.perf_counter() - started, 0, 0, False, repr(exc))
    end = time.perf_counter()
    return Outcome(end - started, (first or end) - started, usage_tokens or chunks, True)


def run_level(send: Any, asks: list[Ask], concurrency: int) -> tuple[float, list[Outcome]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(send, asks))
    return time.perf_counter() - started, outcomes


def summarize(wall: float, outcomes: list[Outcome]) -> dict[str, Any]:
    ok = [o for o in outcomes if o.ok]
    lat = sorted(o.latency_s for o in ok) or [0.0]
    tokens = sum(o.completion_tokens for o in ok)
    return {
        "requests": len(outcomes), "errors": len(outcomes) - len(ok), "wall_s": round(wall, 2),
        "pages_per_min": round(len(ok) / wall * 60, 2),
        "p50_s": round(statistics.median(lat), 2), "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
        "ttft_p50_s": round(statistics.median([o.ttft_s for o in ok] or [0.0]), 2),
        "output_tok_s": round(tokens / wall, 2), "completion_tokens": tokens,
        "first_s": round(outcomes[0].latency_s, 2) if outcomes else 0.0,
    }


def bench_server(name: str, args: argparse.Namespace, pair: Any) -> dict[str, Any]:
    server = SERVERS[name](pair.text, pair.mmproj, threads=args.threads, slots=args.slots, ctx=args.ctx)
    ready_s = server.start()
    results: dict[str, Any] = {"ready_s": round(ready_s, 1), "levels": {}}
    try:
        with httpx.Client(timeout=httpx.Timeout(600, connect=10), limits=httpx.Limits(max_connections=64)) as client:
            # warm-up: loads lazily-initialised parts (llama-cpp-python's projector) outside the measurement
            ask_server(client, server.url, workload("doc", 1, 4, 9999)[0])
            for mix in args.mixes:
                for level in args.concurrency:
                    asks = workload(mix, args.requests, args.tokens, first_seed(mix, level))
                    wall, outcomes = run_level(lambda a: ask_server(client, server.url, a), asks, level)
                    results["levels"][f"{mix}@{level}"] = summarize(wall, outcomes)
                    print(name, mix, level, results["levels"][f"{mix}@{level}"], flush=True)
    finally:
        server.stop()
    results["peak_rss_mb"] = round(server.peak_mb, 1)
    return results


def bench_engine(args: argparse.Namespace, pair: Any) -> dict[str, Any]:
    """Run the in-process engine in a child process, so its memory is measured on its own."""
    command = [sys.executable, __file__, "--engine-worker", json.dumps({
        **{k: v for k, v in vars(args).items() if k not in ("out", "func")}, "text": str(pair.text),
        "mmproj": str(pair.mmproj),
    })]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def engine_worker(spec: dict[str, Any]) -> None:
    from pagescribe.engine.base import collect
    from pagescribe.engine.llamacpp import LlamaCppEngine
    from pagescribe.images import decode_image
    from pagescribe.models.files import ModelFiles
    from pagescribe.types import GenerationRequest, GenerationResult, ImagePart, Message, SamplingParams, TextPart

    files = ModelFiles(Path(spec["text"]), Path(spec["mmproj"]), "bench")
    started = time.perf_counter()
    engine = LlamaCppEngine(files, n_ctx=spec["ctx"], n_threads=spec["threads"], slots=spec["slots"])
    engine.load()
    results: dict[str, Any] = {"ready_s": round(time.perf_counter() - started, 1), "levels": {}}

    def send(ask: Ask) -> Outcome:
        text = TextPart(ask.text)
        image = ImagePart(decode_image(ask.image_png)) if ask.image_png else None
        parts = (text,) if image is None else (text, image) if ask.text_first else (image, text)
        request = GenerationRequest(
            messages=(Message("user", parts),), params=SamplingParams(max_tokens=ask.max_tokens, seed=ask.seed)
        )
        t0 = time.perf_counter()
        first = 0.0
        result: GenerationResult | None = None
        for item in engine.stream(request):
            if isinstance(item, GenerationResult):
                result = item
            else:
                first = first or time.perf_counter()
        end = time.perf_counter()
        assert result is not None
        return Outcome(end - t0, (first or end) - t0, result.usage.completion_tokens, True)

    collect(engine, GenerationRequest(messages=(Message.user("warm up"),), params=SamplingParams(max_tokens=2)))
    for mix in spec["mixes"]:
        for level in spec["concurrency"]:
            asks = workload(mix, spec["requests"], spec["tokens"], first_seed(mix, level))
            wall, outcomes = run_level(send, asks, level)
            results["levels"][f"{mix}@{level}"] = summarize(wall, outcomes)
            print("engine", mix, level, results["levels"][f"{mix}@{level}"], file=sys.stderr, flush=True)
    engine.close()
    results["peak_rss_mb"] = round(peak_rss_mb(os.getpid()), 1)
    print(json.dumps(results))


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Throughput, preset {report['preset']}: {report['threads']} threads, {report['slots']} slots, "
        f"ctx {report['ctx']}, {report['tokens']} output tokens, {report['requests']} requests per level",
        "", f"Machine: {report['machine']}. Ran {report['started']}.", "",
        "| target | mix@conc | pages/min | p50 s | p95 s | TTFT p50 s | output tok/s | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target, result in report["targets"].items():
        for level, s in result["levels"].items():
            lines.append(
                f"| {target} | {level} | {s['pages_per_min']} | {s['p50_s']} | {s['p95_s']} | {s['ttft_p50_s']} "
                f"| {s['output_tok_s']} | {s['errors']} |"
            )
    lines += ["", "| target | ready s | peak RSS MB |", "|---|---|---|"]
    lines += [f"| {t} | {r['ready_s']} | {r['peak_rss_mb']} |" for t, r in report["targets"].items()]
    if report.get("ratios"):
        lines += ["", "Ratios (pagescribe server over peer, same mix and concurrency):", ""]
        lines += [f"- {k}: {v}" for k, v in report["ratios"].items()]
    return "\n".join(lines) + "\n"


def ratios(targets: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    ours = targets.get("pagescribe", {}).get("levels", {})
    for peer in ("llama-server", "llama-cpp-python", "engine"):
        for level, s in targets.get(peer, {}).get("levels", {}).items():
            if level in ours and s["pages_per_min"]:
                out[f"pages/min {level} vs {peer}"] = round(ours[level]["pages_per_min"] / s["pages_per_min"], 2)
            if level in ours and s["p50_s"] and peer == "engine":
                out[f"p50 latency {level} server/engine"] = round(ours[level]["p50_s"] / s["p50_s"], 3)
    return out


def plot(report: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for target, result in report["targets"].items():
        levels = [
            (int(k.split("@")[1]), v["pages_per_min"]) for k, v in result["levels"].items() if k.startswith("doc@")
        ]
        if levels:
            ax.plot(*zip(*sorted(levels), strict=True), marker="o", label=target)
    ax.set_xlabel("concurrent requests")
    ax.set_ylabel("pages per minute (doc mix)")
    ax.set_title(f"preset {report['preset']}, {report['threads']} threads")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="1b", choices=["tiny", "1b", "llava-1.5-7b"])
    parser.add_argument("--targets", default="engine,pagescribe,llama-server,llama-cpp-python")
    parser.add_argument("--mixes", default="doc")
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--requests", type=int, default=8, help="requests per concurrency level")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=2048, help="context per request (slot)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--engine-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_worker:
        spec = json.loads(args.engine_worker)
        engine_worker(spec)
        return
    args.mixes = args.mixes.split(",")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    pair = synthesize(args.preset, CACHE / "bench-models" / args.preset, seed=0)
    report: dict[str, Any] = {
        "preset": args.preset, "threads": args.threads, "slots": args.slots, "ctx": args.ctx, "tokens": args.tokens,
        "requests": args.requests, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "targets": {},
    }
    for target in args.targets.split(","):
        report["targets"][target] = bench_engine(args, pair) if target == "engine" else bench_server(target, args, pair)
    report["ratios"] = ratios(report["targets"])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"throughput-{args.preset}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    stem.with_suffix(".md").write_text(markdown(report))
    plot(report, stem.with_suffix(".png"))
    print(markdown(report))


if __name__ == "__main__":
    main()
