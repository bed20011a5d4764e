"""Router benchmark: `convert --route auto` against `--route vlm` on real public PDFs, same model and threads, one run.

    python bench/route.py --preset 1b --manual-pages 24 --tokens 256 [--auto-all] [--corpora manual,guide]
        [--pageset build/pageset]

Part 1, pages per minute: pages sampled evenly from a program manual (gnuplot.pdf, Debian `gnuplot-doc`) and a
guide full of graph drawings (dotguide.pdf, `graphviz-doc`), each corpus converted twice into fresh folders (no
resume cache) with the in-process engine: once routed (`auto`), once with every page sent to the model (`vlm`).
With --auto-all the routed run converts every page of the corpus: what `auto` costs depends on the corpus's mix
of pages (a sample of 16 can hold two of the manual's 22 ruled tables, or none), while a `vlm` page costs about
the same whatever is on it, so the sample gives its rate.
Part 2, with --pageset: `pagescribe eval` of that page set (scripts/build_pageset.py) with the `auto` and `vlm`
backends and the same model, compared side by side. The model has random weights: its words score near zero, so
the eval shows what routing keeps, not how good a real model is.

Writes bench/results/route-<preset>.json and .md. Not a test; run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from peers import CACHE  # noqa: E402

from pagescribe.engine.factory import build_engine  # noqa: E402
from pagescribe.engine.options import EngineOptions  # noqa: E402
from pagescribe.models.files import ModelFiles  # noqa: E402
from pagescribe.models.synth import synthesize  # noqa: E402
from pagescribe.pipeline import Conversion, ConvertOptions  # noqa: E402
from pagescribe.pipeline.render import count_pages  # noqa: E402
from pagescribe.types import SamplingParams  # noqa: E402

SOURCES = {
    "manual": ("manual (gnuplot.pdf)", Path("/usr/share/doc/gnuplot/gnuplot.pdf")),
    "guide": ("graph guide (dotguide.pdf)", Path("/usr/share/doc/graphviz/pdf/dotguide.pdf.gz")),
}


def source_pdf(path: Path, work: Path) -> Path | None:
    """The PDF itself, or its gunzipped copy in ``work``; None when the Debian package is not installed."""
    if not path.exists():
        return None
    if path.suffix != ".gz":
        return path
    target = work / path.stem
    with gzip.open(path) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def sample(count: int, wanted: int) -> list[int]:
    """``wanted`` page numbers spread evenly over ``count`` pages."""
    step = max(1, count // wanted)
    return list(range(1, count + 1, step))[:wanted]


def convert_once(pdf: Path, pages: list[int], engine: Any, route: str, tokens: int) -> dict[str, Any]:
    options = ConvertOptions(route=route, pages=pages, params=SamplingParams(max_tokens=tokens, seed=0))  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        records = list(Conversion([pdf], out_dir=out, backend=engine, options=options))
        wall = time.perf_counter() - started
    routes = Counter(r.route or "none" for r in records)
    done = sum(1 for r in records if r.status in ("ok", "blank"))
    model_s = [sum(r.timings.get(k, 0) for k in ("image_encode_ms", "prompt_ms", "generate_ms")) / 1000
               for r in records if r.route == "vlm"]
    return {
        "route": route, "pages": len(records), "done": done, "wall_s": round(wall, 2),
        "pages_per_min": round(60 * len(records) / wall, 2), "routes": dict(routes),
        "model_tokens": sum(r.usage.get("completion_tokens", 0) for r in records),
        "model_s_per_page": [round(min(model_s), 1), round(max(model_s), 1)] if model_s else None,
    }


def speed(args: argparse.Namespace, engine: Any, work: Path) -> list[dict[str, Any]]:
    rows = []
    for key in args.corpora.split(","):
        name, path = SOURCES[key]
        pdf = source_pdf(path, work)
        if pdf is None:
            print(f"skipping {name}: {path} is not installed", flush=True)
            continue
        count = count_pages(pdf)
        sampled = sample(count, args.manual_pages)
        for route in ("auto", "vlm"):
            pages = list(range(1, count + 1)) if route == "auto" and args.auto_all else sampled
            row = {"corpus": name, **convert_once(pdf, pages, engine, route, args.tokens)}
            rows.append(row)
            print(row, flush=True)
    return rows


def scores(args: argparse.Namespace, model_dir: Path, work: Path) -> dict[str, Any] | None:
    """`pagescribe eval` of the page set with both backends, then `eval compare`; the JSON of each."""
    if args.pageset is None:
        return None
    results = {}
    for backend in ("auto", "vlm"):
        out = work / f"eval-{backend}.json"
        cmd = [sys.executable, "-m", "pagescribe.cli", "eval", str(args.pageset), "--backend", backend,
               "--model", str(model_dir), "--max-tokens", str(args.eval_tokens), "--json", str(out)]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        results[backend] = json.loads(out.read_text())
    compare = subprocess.run(
        [sys.executable, "-m", "pagescribe.cli", "eval", "compare", str(work / "eval-vlm.json"),
         str(work / "eval-auto.json")], check=True, capture_output=True, text=True,
    ).stdout
    print(compare)
    return {"results": results, "compare": compare}


def report(args: argparse.Namespace, rows: list[dict[str, Any]], evals: dict[str, Any] | None) -> str:
    lines = [
        f"# Routing, preset {args.preset}: {args.threads} threads, {args.tokens} output tokens per model page, "
        f"{args.manual_pages} pages sampled evenly per corpus" + (" (auto: every page)" if args.auto_all else ""),
        "",
        f"Ran {time.strftime('%Y-%m-%d %H:%M:%S')}, `{' '.join(sys.argv)}`.",
        "",
        "| corpus | route | pages | wall s | pages/min | routes | model tokens | s per model page |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        routes = ", ".join(f"{k} {v}" for k, v in sorted(r["routes"].items()))
        lines.append(f"| {r['corpus']} | {r['route']} | {r['done']}/{r['pages']} | {r['wall_s']} | "
                     f"{r['pages_per_min']} | {routes} | {r['model_tokens']} | "
                     f"{'-'.join(map(str, r.get('model_s_per_page') or [])) or '-'} |")
    same = "auto on every page, vlm on the sample" if args.auto_all else "same pages"
    lines += ["", f"Ratios (auto over vlm, pages per minute, {same}, same model and threads):", ""]
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        pair = {r["route"]: r for r in rows if r["corpus"] == corpus}
        if {"auto", "vlm"} <= pair.keys():
            ratio = pair["auto"]["pages_per_min"] / pair["vlm"]["pages_per_min"]
            lines.append(f"- {corpus}: {ratio:.1f}x")
    if evals is not None:
        lines += ["", f"## pagescribe eval of {args.pageset} ({args.eval_tokens} tokens per model page)", "",
                  "```", evals["compare"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="1b", choices=["tiny", "1b", "llava-1.5-7b"])
    parser.add_argument("--manual-pages", type=int, default=24, help="pages sampled evenly from each corpus")
    parser.add_argument("--auto-all", action="store_true", help="the auto run converts every page of the corpus")
    parser.add_argument("--corpora", default="manual,guide", help="comma-separated: manual, guide")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--eval-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--pageset", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    model_dir = CACHE / "bench-models" / args.preset
    pair = synthesize(args.preset, model_dir, seed=0)
    files = ModelFiles(pair.text, pair.mmproj, f"pagescribe-{args.preset}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engine = build_engine(EngineOptions(ctx=args.ctx, threads=args.threads, slots=1), files=files)
        engine.load()
        try:
            rows = speed(args, engine, work)
        finally:
            engine.close()
        evals = scores(args, model_dir, work)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"route-{args.preset}"
    data = {"preset": args.preset, "threads": args.threads, "tokens": args.tokens, "rows": rows,
            "eval": evals["results"] if evals else None}
    stem.with_name(stem.name + ".json").write_text(json.dumps(data, indent=2))
    text = report(args, rows, evals)
    stem.with_name(stem.name + ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
