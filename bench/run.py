"""Throughput benchmark: the same request mix against pagescribe and its peers, in one run, on one machine.

Targets: ``engine`` (pagescribe's engine called in-process, in a child process of its own), ``pagescribe`` (its
server), ``pagescribe@REV`` (the server as committed at a git revision, for a before/after comparison in one
run), ``llama-server`` and ``llama-cpp-python`` (their OpenAI servers). Same model files, threads, context,
flash attention and sampling (temperature 0 and an explicit seed per request). Mixes: ``doc`` (the document
prompt, then a distinct page image, N output tokens), ``question`` (a page image, then a short question, 16
tokens), ``repeat`` (one page asked again and again), ``decode`` (a short text prompt, 2N output tokens).

Every target is started first and warmed with one request per slot (a long-running server has every slot warm).
Then each concurrency level runs in ``--rounds`` rounds, and within a round every target answers the same pages in
turn, the order rotating from round to round: a slow or fast spell of a shared machine lands on all targets alike
instead of on whichever ran at that moment.

    python bench/run.py --preset 1b --concurrency 1,2,4,8 --rounds 2

Writes bench/results/throughput-<preset>.json and .md (and a .png plot when matplotlib is installed).
``--limits`` adds llama.cpp's own ``llama-batched-bench`` (decode tokens/s at 1 and 4 streams: what batching can
give on this machine at all) and a per-page compute floor. ``--memory-slots 1,2,4,8`` records pagescribe's peak
RSS per slot count. Not a test: it takes many minutes.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "examples")]

from make_samples import numbered_page  # noqa: E402
from peers import CACHE, SERVERS, Server, peak_rss_mb, server_for  # noqa: E402

from pagescribe.models.synth import synthesize  # noqa: E402
from pagescribe.prompts import load_prompt  # noqa: E402

MIX_SEEDS = {"doc": 0, "question": 300, "repeat": 600, "decode": 900}


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
    timings: dict[str, float] | None = None


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


def first_seed(mix: str, level: int, round_: int) -> int:
    """Distinct pages for every mix, level and round, the same for every target (str hashes are randomized)."""
    return 10000 * (round_ + 1) + 1000 * level + MIX_SEEDS[mix]


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
    summary = {
        "requests": len(outcomes), "errors": len(outcomes) - len(ok), "wall_s": round(wall, 2),
        "pages_per_min": round(len(ok) / wall * 60, 2),
        "p50_s": round(statistics.median(lat), 2), "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
        "ttft_p50_s": round(statistics.median([o.ttft_s for o in ok] or [0.0]), 2),
        "output_tok_s": round(tokens / wall, 2), "completion_tokens": tokens,
    }
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        summary["first_error"] = failed[0][:200]
    timed = [o.timings for o in ok if o.timings]
    if timed:
        summary["timings_median_ms"] = {k: round(statistics.median(t[k] for t in timed)) for k in timed[0]}
    return summary


# -- targets ---------------------------------------------------------------------------------------------------


class ServerTarget:
    """A peer (or pagescribe) behind its OpenAI endpoint."""

    def __init__(self, server: Server):
        self.server = server
        self.ready_s = server.start()

    def run(self, asks: list[Ask], concurrency: int) -> tuple[float, list[Outcome]]:
        # a new connection per request: llama-server drops some reused keep-alive connections after a long stream
        # ("Server disconnected without sending a response"), which would count as its errors
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
        with httpx.Client(timeout=httpx.Timeout(600, connect=10), limits=limits) as client:
            return run_level(lambda a: ask_server(client, self.server.url, a), asks, concurrency)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.server.process.pid) if self.server.process else 0.0

    def stop(self) -> None:
        self.server.stop()


class EngineTarget:
    """pagescribe's engine called directly, in a child process (so its memory is its own) driven over a pipe."""

    def __init__(self, args: argparse.Namespace, pair: Any):
        spec = {"text": str(pair.text), "mmproj": str(pair.mmproj), "ctx": args.ctx, "threads": args.threads,
                "slots": args.slots, "tokens": args.tokens}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--engine-worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.ready_s = float(self._read()["ready_s"])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the engine worker exited with {self.process.wait()}")
        return dict(json.loads(line))

    def run(self, asks: list[Ask], concurrency: int) -> tuple[float, list[Outcome]]:
        assert self.process.stdin is not None
        order = {"asks": [{**asdict(a), "image_png": base64.b64encode(a.image_png).decode()} for a in asks],
                 "concurrency": concurrency}
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()
        reply = self._read()
        return reply["wall_s"], [Outcome(**o) for o in reply["outcomes"]]

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def engine_worker(spec: dict[str, Any]) -> None:
    from pagescribe.engine.factory import build_engine
    from pagescribe.engine.options import EngineOptions
    from pagescribe.engine.sinks import stream
    from pagescribe.images import decode_image
    from pagescribe.models.files import ModelFiles
    from pagescribe.types import GenerationRequest, GenerationResult, ImagePart, Message, SamplingParams, TextPart

    files = ModelFiles(Path(spec["text"]), Path(spec["mmproj"]), "bench")
    started = time.perf_counter()
    engine = build_engine(EngineOptions(ctx=spec["ctx"], threads=spec["threads"], slots=spec["slots"]), files=files)
    engine.load()
    print(json.dumps({"ready_s": round(time.perf_counter() - started, 1)}), flush=True)

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
        for item in stream(engine, request):
            if isinstance(item, GenerationResult):
                result = item
            else:
                first = first or time.perf_counter()
        end = time.perf_counter()
        assert result is not None
        return Outcome(end - t0, (first or end) - t0, result.usage.completion_tokens, True,
                       timings={**result.timings.as_dict(), "cached_tokens": result.usage.cached_tokens})

    for line in sys.stdin:
        order = json.loads(line)
        asks = [Ask(**{**a, "image_png": base64.b64decode(a["image_png"])}) for a in order["asks"]]
        wall, outcomes = run_level(send, asks, order["concurrency"])
        print(json.dumps({"wall_s": wall, "outcomes": [asdict(o) for o in outcomes]}), flush=True)
    engine.close()


def start_target(name: str, args: argparse.Namespace, pair: Any) -> ServerTarget | EngineTarget:
    if name == "engine":
        return EngineTarget(args, pair)
    return ServerTarget(server_for(name, pair.text, pair.mmproj, threads=args.threads, slots=args.slots, ctx=args.ctx))


# -- what the machine allows at all ------------------------------------------------------------------------------


def batched_bench(text: Path, args: argparse.Namespace) -> dict[str, float]:
    """llama.cpp's own ``llama-batched-bench``: aggregate decode tokens/s at 1, 2, 4 and 8 streams."""
    binary = subprocess.run(
        ["bash", str(ROOT / "bench" / "build_llama_server.sh"), "llama-batched-bench"], check=True,
        capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    out = subprocess.run(
        [binary, "-m", str(text), "-c", str(args.ctx * 8), "-b", "512", "-ub", "512", "-npp", "64",
         "-ntg", str(args.tokens), "-npl", "1,2,4,8", "-t", str(args.threads), "-tb", str(args.threads), "-fa", "on"],
        check=True, capture_output=True, text=True,
    ).stdout
    rates: dict[str, float] = {}
    for row in out.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 10 and re.fullmatch(r"\d+", cells[2]):
            rates[f"decode_tok_s@{cells[2]}"] = float(cells[7])
    return rates


def memory_by_slots(args: argparse.Namespace, pair: Any, slot_counts: list[int]) -> dict[str, float]:
    """pagescribe's peak RSS with N slots, each slot busy with a page."""
    peaks: dict[str, float] = {}
    for n in slot_counts:
        server = SERVERS["pagescribe"](pair.text, pair.mmproj, threads=args.threads, slots=n, ctx=args.ctx)
        target = ServerTarget(server)
        try:
            target.run(workload("doc", n, 8, 90000 + 100 * n), n)
            peaks[str(n)] = round(target.peak_rss_mb(), 1)
        finally:
            target.stop()
        print("memory", n, "slots", peaks[str(n)], "MB", flush=True)
    return peaks


# -- report ----------------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Throughput, preset {report['preset']}: {report['threads']} threads, {report['slots']} slots, "
        f"ctx {report['ctx']} per slot, flash attention on, {report['tokens']} output tokens a page "
        f"(twice as many in the decode mix), "
        f"{report['rounds']} interleaved rounds of {report['requests']}+ requests per level",
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
    if report.get("memory_by_slots"):
        lines += ["", "pagescribe server peak RSS by slot count (every slot busy with a page):", "",
                  "| slots | peak RSS MB |", "|---|---|"]
        lines += [f"| {n} | {mb} |" for n, mb in report["memory_by_slots"].items()]
    if report.get("limits"):
        lines += ["", "What this machine allows (llama.cpp's llama-batched-bench, and the engine's own timings):", ""]
        lines += [f"- {k}: {v}" for k, v in report["limits"].items()]
    if report.get("ratios"):
        lines += ["", "Ratios (pagescribe server over peer, same mix and concurrency):", ""]
        lines += [f"- {k}: {v}" for k, v in report["ratios"].items()]
    return "\n".join(lines) + "\n"


def ratios(targets: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    ours = targets.get("pagescribe", {}).get("levels", {})
    for peer in ("llama-server", "llama-cpp-python", "engine", *(t for t in targets if t.startswith("pagescribe@"))):
        for level, s in targets.get(peer, {}).get("levels", {}).items():
            if level in ours and s["pages_per_min"]:
                out[f"pages/min {level} vs {peer}"] = round(ours[level]["pages_per_min"] / s["pages_per_min"], 2)
            if level in ours and s["p50_s"] and peer == "engine":
                out[f"p50 latency {level} server/engine"] = round(ours[level]["p50_s"] / s["p50_s"], 3)
    for name, result in targets.items():
        levels = result["levels"]
        if "decode@1" in levels and "decode@4" in levels and levels["decode@1"]["output_tok_s"]:
            out[f"{name}: decode tok/s at 4 streams over 1"] = round(
                levels["decode@4"]["output_tok_s"] / levels["decode@1"]["output_tok_s"], 2)
    return out


def limits(report: dict[str, Any], rates: dict[str, float]) -> dict[str, Any]:
    """The aggregate-decode ceiling and a per-page compute floor, to judge the goals against."""
    out: dict[str, Any] = dict(rates)
    if rates.get("decode_tok_s@1"):
        out["llama.cpp decode at 4 streams over 1"] = round(rates.get("decode_tok_s@4", 0) / rates["decode_tok_s@1"], 2)
    timings = report["targets"].get("engine", {}).get("levels", {}).get("doc@1", {}).get("timings_median_ms")
    if timings and rates.get("decode_tok_s@4"):
        # A page's image must be encoded and its tokens evaluated whatever the server; only decoding is shared
        # by batching, at best at llama.cpp's own 4-stream rate.
        prefill_s = (timings["image_encode_ms"] + timings["prompt_ms"]) / 1000
        floor_s = prefill_s + report["tokens"] / rates["decode_tok_s@4"]
        out["per-page compute floor at 4 streams, s"] = round(floor_s, 2)
        out["ceiling pages/min for any server"] = round(60 / floor_s, 2)
        peer = report["targets"].get("llama-server", {}).get("levels", {}).get("doc@4", {})
        if peer.get("pages_per_min"):
            out["ceiling over llama-server doc@4"] = round(60 / floor_s / peer["pages_per_min"], 2)
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
    ceiling = report.get("limits", {}).get("ceiling pages/min for any server")
    if ceiling:
        ax.axhline(ceiling, linestyle="--", color="grey", label="compute ceiling")
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
    parser.add_argument("--requests", type=int, default=4, help="requests per level and round (at least the level)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=2048, help="context per request (slot)")
    parser.add_argument("--limits", action="store_true", help="also run llama-batched-bench and derive the floor")
    parser.add_argument("--memory-slots", default="", help="slot counts to record pagescribe's peak RSS for")
    parser.add_argument("--warm-mix", default="doc", help="the mix every slot is warmed with (decode: no pages)")
    parser.add_argument("--name", default="", help="suffix for the result files")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--engine-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_worker:
        engine_worker(json.loads(args.engine_worker))
        return
    mixes = args.mixes.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    names = args.targets.split(",")
    pair = synthesize(args.preset, CACHE / "bench-models" / args.preset, seed=0)
    report: dict[str, Any] = {
        "preset": args.preset, "threads": args.threads, "slots": args.slots, "ctx": args.ctx, "tokens": args.tokens,
        "requests": args.requests, "rounds": args.rounds, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "targets": {},
    }
    targets: dict[str, ServerTarget | EngineTarget] = {}
    try:
        for name in names:
            targets[name] = start_target(name, args, pair)
            # warm every slot: the document prompt is then cached wherever a server can cache it
            targets[name].run(workload(args.warm_mix, args.slots, 4, 99000), args.slots)
            report["targets"][name] = {"ready_s": round(targets[name].ready_s, 1), "levels": {}}
        for mix in mixes:
            for level in levels:
                n = max(args.requests, level)
                walls = {name: 0.0 for name in names}
                outcomes: dict[str, list[Outcome]] = {name: [] for name in names}
                for round_ in range(args.rounds):
                    asks = workload(mix, n, args.tokens, first_seed(mix, level, round_))
                    for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                        wall, got = targets[name].run(asks, level)
                        walls[name] += wall
                        outcomes[name] += got
                        errors = [o.error for o in got if not o.ok]
                        print(name, mix, level, round_, round(n / wall * 60, 2), "pages/min", errors, flush=True)
                for name in names:
                    report["targets"][name]["levels"][f"{mix}@{level}"] = summarize(walls[name], outcomes[name])
        for name, target in targets.items():
            report["targets"][name]["peak_rss_mb"] = round(target.peak_rss_mb(), 1)
    finally:
        for target in targets.values():
            target.stop()
    if args.memory_slots:
        report["memory_by_slots"] = memory_by_slots(args, pair, [int(n) for n in args.memory_slots.split(",")])
    if args.limits:
        report["limits"] = limits(report, batched_bench(pair.text, args))
    report["ratios"] = ratios(report["targets"])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"throughput-{args.preset}{'-' + args.name if args.name else ''}"
    stem.with_name(stem.name + ".json").write_text(json.dumps(report, indent=2, default=str))
    stem.with_name(stem.name + ".md").write_text(markdown(report))
    plot(report, stem.with_name(stem.name + ".png"))
    print(markdown(report))


if __name__ == "__main__":
    main()
