"""Per model family: one document page at the family's default resolution, pagescribe against llama-server.

For each family the full-size preset is synthesized (random weights, the published shapes and quantization), and
pagescribe's server and llama.cpp's llama-server (built from the same vendored source) are started on the same
files, threads and context. Each asks the family's document prompt about a US-letter page fitted within the
family's default side (the same pixels to both), greedy, ``--tokens`` tokens. Per family it records the image
tokens, image encode ms and prompt ms of a page (from each server's own timings), then pages/minute at each
``--concurrency`` level, the targets answering the same distinct pages in interleaved rounds (run.py's method).

    python bench/families.py                                   # every family, full size, 2 threads, c=1,4
    python bench/families.py --families granite-docling --tiny --concurrency 1 --requests 1 --rounds 1
    python bench/families.py --families qwen2.5-vl --concurrency 1 --requests 1 --rounds 1 --warm text

Writes bench/results/families[-NAME].json and .md. Not a test: at full size it takes a long time on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "examples")]

from make_samples import numbered_page  # noqa: E402
from peers import CACHE, server_for  # noqa: E402
from run import Ask, Outcome, ServerTarget, chat_body, summarize  # noqa: E402

from pagescribe.models.families import FAMILIES, LETTER_PAGE, Family, fit_within  # noqa: E402
from pagescribe.models.synth import synthesize  # noqa: E402

TARGETS = ("pagescribe", "llama-server")


def page_png(n: int, family: Family) -> bytes:
    """Page ``n`` (distinct pixels for every n) as a US-letter page fitted within the family's default side."""
    img = numbered_page(n).resize(LETTER_PAGE)
    img = img.resize(fit_within(*img.size, family.image.default_max_side))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def asks(family: Family, first: int, n: int, tokens: int) -> list[Ask]:
    prompt = family.document_prompt().text
    return [Ask(prompt, page_png(first + i, family), tokens, first + i, text_first=not family.image_first)
            for i in range(n)]


def page_costs(url: str, ask: Ask) -> dict[str, Any]:
    """One page, not streamed: what the server says it spent (pagescribe: image tokens, encode and prompt ms;
    llama-server: prompt tokens and prompt ms, the image's encode included)."""
    body = {**chat_body(ask), "stream": False}
    body.pop("stream_options", None)
    started = time.perf_counter()
    answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=3600).json()
    wall_ms = (time.perf_counter() - started) * 1000
    usage, timings = answer.get("usage", {}), answer.get("timings", {})
    costs: dict[str, Any] = {"wall_ms": round(wall_ms), "prompt_tokens": usage.get("prompt_tokens")}
    if "image_encode_ms" in timings:  # pagescribe
        costs |= {
            "image_tokens": usage.get("prompt_tokens_details", {}).get("image_tokens"),
            "image_encode_ms": round(timings["image_encode_ms"]),
            "prompt_ms": round(timings["prompt_ms"]),
        }
    else:  # llama-server: prompt_n / prompt_ms of its own timings (image encode and decode included)
        costs |= {"prompt_ms": round(timings.get("prompt_ms", 0)), "prompt_n": timings.get("prompt_n")}
    return costs


def bench_family(family: Family, args: argparse.Namespace) -> dict[str, Any]:
    preset = family.tiny_preset if args.tiny else family.full_preset
    started = time.perf_counter()
    pair = synthesize(preset, CACHE / "bench-models" / preset, seed=0)
    result: dict[str, Any] = {
        "preset": preset, "synth_s": round(time.perf_counter() - started, 1),
        "files_mb": {p.name: round(p.stat().st_size / 1e6, 1) for p in (pair.text, pair.mmproj)},
        "letter_page_tokens": family.letter_page_tokens(), "targets": {},
    }
    targets: dict[str, ServerTarget] = {}
    try:
        for name in args.targets.split(","):
            targets[name] = ServerTarget(server_for(name, pair.text, pair.mmproj, threads=args.threads,
                                                    slots=args.slots, ctx=args.ctx))
            warm = asks(family, 99000, 1, 4)  # the template prefix cached where possible
            if args.warm == "text":  # the prompt without its page: for families whose page takes minutes
                warm = [dataclasses.replace(a, image_png=b"") for a in warm]
            targets[name].run(warm, 1)
            cost = page_costs(targets[name].server.url, asks(family, 98000, 1, args.tokens)[0])
            result["targets"][name] = {"ready_s": round(targets[name].ready_s, 1), "page": cost, "levels": {}}
            print(family.name, name, "page", cost, flush=True)
        for level in [int(c) for c in args.concurrency.split(",")]:
            n = max(args.requests, level)
            walls = {name: 0.0 for name in targets}
            outcomes: dict[str, list[Outcome]] = {name: [] for name in targets}
            names = list(targets)
            for round_ in range(args.rounds):
                batch = asks(family, 10000 * (round_ + 1) + 1000 * level, n, args.tokens)
                for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                    wall, got = targets[name].run(batch, level)
                    walls[name] += wall
                    outcomes[name] += got
                    print(family.name, name, f"c={level}", round_, round(n / wall * 60, 2), "pages/min", flush=True)
            for name in targets:
                result["targets"][name]["levels"][f"c{level}"] = summarize(walls[name], outcomes[name])
        for name, target in targets.items():
            result["targets"][name]["peak_rss_mb"] = round(target.peak_rss_mb(), 1)
    finally:
        for target in targets.values():
            target.stop()
    result["ratios"] = ratios(result["targets"])
    return result


def ratios(targets: dict[str, Any]) -> dict[str, float]:
    """pagescribe's pages/min over llama-server's per level, from pages and wall time (the rounded pages/min of a
    slow family would move the ratio by a few per cent)."""
    ours, peer = targets.get("pagescribe", {}).get("levels", {}), targets.get("llama-server", {}).get("levels", {})

    def rate(s: dict[str, Any]) -> float:
        return (s["requests"] - s["errors"]) / s["wall_s"]

    return {f"pages/min {level} vs llama-server": round(rate(s) / rate(peer[level]), 3)
            for level, s in ours.items() if peer.get(level, {}).get("pages_per_min")}


def markdown(report: dict[str, Any]) -> str:
    levels = report["concurrency"].split(",")
    head = " | ".join(f"pages/min c={c} (pagescribe / llama-server)" for c in levels)
    lines = [
        f"# Model families: one page at the default resolution, {report['threads']} threads, {report['slots']} "
        f"slots, ctx {report['ctx']}, {report['tokens']} output tokens, greedy", "",
        f"Machine: {report['machine']}. Ran {report['started']}. Random weights, the published shapes.", "",
        f"| family | preset | image tokens | encode ms | prompt ms | {head} | ratio |",
        "|---|---|---|---|---|" + "---|" * len(levels) + "---|",
    ]
    for name, fam in report["families"].items():
        ours, peer = fam["targets"].get("pagescribe", {}), fam["targets"].get("llama-server", {})
        page = ours.get("page", {})
        cells = [f"{ours.get('levels', {}).get('c' + c, {}).get('pages_per_min', '-')} / "
                 f"{peer.get('levels', {}).get('c' + c, {}).get('pages_per_min', '-')}" for c in levels]
        worst = min(fam["ratios"].values(), default=None)
        lines.append(f"| {name} | {fam['preset']} | {page.get('image_tokens', '-')} | "
                     f"{page.get('image_encode_ms', '-')} | {page.get('prompt_ms', '-')} | {' | '.join(cells)} | "
                     f"{worst if worst is not None else '-'} |")
    lines += ["", "ratio: the lowest pagescribe / llama-server pages/min over the levels."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--tiny", action="store_true", help="the tiny presets (a check that the run works)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--requests", type=int, default=4, help="pages per level and round (at least the level)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=4096, help="context per request (slot)")
    parser.add_argument("--warm", choices=["page", "text"], default="page",
                        help="warm each server with one page, or with the prompt alone (slow families)")
    parser.add_argument("--name", default="", help="suffix for the result files")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "threads": args.threads, "slots": args.slots, "ctx": args.ctx, "tokens": args.tokens,
        "concurrency": args.concurrency, "requests": args.requests, "rounds": args.rounds, "tiny": args.tiny,
        "warm": args.warm,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "families": {},
    }
    for name in args.families.split(","):
        report["families"][name] = bench_family(FAMILIES[name], args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"families{'-' + args.name if args.name else ''}"
    stem.with_name(stem.name + ".json").write_text(json.dumps(report, indent=2, default=str))
    stem.with_name(stem.name + ".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
