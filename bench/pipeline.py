"""Pipeline benchmark: pages per minute of `convert` on one PDF, in-process engine vs pagescribe server, one run.

    python bench/pipeline.py --preset 1b --pages 6 --concurrency 1,2,4

Each level converts the same PDF into a fresh output folder (no resume cache), with `concurrency` pages in flight:
the in-process engine gets that many slots; the server is started with that many slots and reached through the
client over HTTP. Writes bench/results/pipeline-<preset>.json and .md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "examples")]

from make_samples import numbered_page  # noqa: E402
from peers import CACHE, pagescribe_server  # noqa: E402

from pagescribe.client import Client  # noqa: E402
from pagescribe.engine.factory import build_engine  # noqa: E402
from pagescribe.engine.options import EngineOptions  # noqa: E402
from pagescribe.models.files import ModelFiles  # noqa: E402
from pagescribe.models.synth import synthesize  # noqa: E402
from pagescribe.pipeline import Conversion, ConvertOptions  # noqa: E402
from pagescribe.types import SamplingParams  # noqa: E402


def make_pdf(path: Path, pages: int) -> Path:
    drawn = [numbered_page(n) for n in range(pages)]
    drawn[0].save(path, save_all=True, append_images=drawn[1:], resolution=150.0)
    return path


def run(pdf: Path, backend: Any, concurrency: int, tokens: int) -> dict[str, Any]:
    options = ConvertOptions(route="vlm", concurrency=concurrency, params=SamplingParams(max_tokens=tokens, seed=0))
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        conversion = Conversion([pdf], out_dir=out, backend=backend, options=options)
        records = list(conversion)
        wall = time.perf_counter() - started
    ok = sum(1 for r in records if r.status == "ok")
    return {"pages": len(records), "ok": ok, "wall_s": round(wall, 2), "pages_per_min": round(ok / wall * 60, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="1b", choices=["tiny", "1b", "llava-1.5-7b"])
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    pair = synthesize(args.preset, CACHE / "bench-models" / args.preset, seed=0)
    files = ModelFiles(pair.text, pair.mmproj, f"pagescribe-{args.preset}")
    pdf = make_pdf(Path(tempfile.mkdtemp()) / "bench.pdf", args.pages)
    rows: list[dict[str, Any]] = []
    for level in (int(c) for c in args.concurrency.split(",")):
        engine = build_engine(EngineOptions(ctx=args.ctx, threads=args.threads, slots=level), files=files)
        engine.load()
        rows.append({"backend": "in-process", "concurrency": level, **run(pdf, engine, level, args.tokens)})
        engine.close()
        print(rows[-1], flush=True)
        server = pagescribe_server(pair.text, pair.mmproj, threads=args.threads, slots=level, ctx=args.ctx)
        server.start()
        try:
            with Client.for_url(server.url, read_timeout_s=600) as client:
                rows.append({"backend": "server", "concurrency": level, **run(pdf, client, level, args.tokens)})
        finally:
            server.stop()
        print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"pipeline-{args.preset}"
    report = {"preset": args.preset, "threads": args.threads, "tokens": args.tokens, "rows": rows}
    stem.with_name(stem.name + ".json").write_text(json.dumps(report, indent=2))
    table = ["| backend | concurrency | pages | wall s | pages/min |", "|---|---|---|---|---|"]
    table += [f"| {r['backend']} | {r['concurrency']} | {r['ok']}/{r['pages']} | {r['wall_s']} | {r['pages_per_min']} |"
              for r in rows]
    text = (f"# convert, preset {args.preset}: {args.pages}-page PDF, {args.tokens} output tokens per page, "
            f"{args.threads} threads\n\n" + "\n".join(table) + "\n")
    stem.with_name(stem.name + ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
