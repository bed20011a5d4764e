"""`pagescribe convert`: documents in, per-page JSONL, Markdown and chunks out."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pagescribe.cli_options import model_options
from pagescribe.errors import PagescribeError
from pagescribe.pipeline.chunking import ChunkOptions
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.progress import make_progress
from pagescribe.pipeline.render import parse_page_ranges
from pagescribe.pipeline.runner import Conversion
from pagescribe.pipeline.transcribe import Backend, EngineBackend
from pagescribe.prompts import load_prompt
from pagescribe.types import SamplingParams


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--out",
    "-o",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: NAME.jsonl and NAME.md per document, chunks.jsonl, summary.json.",
)
@model_options
@click.option("--url", default=None, metavar="URL", help="Send pages to a pagescribe server (format A).")
@click.option("--endpoint", default=None, metavar="NAME", help="Send pages to a SageMaker endpoint.")
@click.option(
    "--prompt-file",
    default=None,
    metavar="FILE|NAME",
    help="The instruction: a text file, or a packaged prompt name (default: document).",
)
@click.option(
    "--concurrency",
    "-j",
    type=click.IntRange(1, 512),
    default=None,
    help="Pages in flight across documents (default: the engine's slots; 4 for a server).",
)
@click.option("--dpi", type=click.FloatRange(1, 2400), default=None, help="Render PDF pages at this DPI.")
@click.option(
    "--max-side",
    type=click.IntRange(64, 10000),
    default=None,
    help="Render pages with this longest side in pixels (default 1344).",
)
@click.option("--pages", default=None, metavar="RANGES", help="Pages of every document, e.g. 1-5,9.")
@click.option(
    "--anchor",
    type=click.Choice(["none", "text-layer"]),
    default="none",
    show_default=True,
    help="text-layer: give the model the PDF's own text of the page as context.",
)
@click.option("--force", is_flag=True, help="Redo pages finished by an earlier run.")
@click.option(
    "--progress",
    "progress_mode",
    type=click.Choice(["auto", "bar", "quiet", "jsonl"]),
    default="auto",
    show_default=True,
    help="auto: a bar on a terminal, one line per document otherwise; jsonl: events on stdout.",
)
@click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=1024, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 5), default=0.0, show_default=True)
@click.option("--repeat-penalty", type=click.FloatRange(0.5, 3), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--time-limit",
    "time_limit_s",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds of generation per page before it stops (finish_reason time_limit).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=None,
    help="Split page text into chunks of at most this many characters (default: a chunk per page).",
)
@click.option("--chunk-overlap", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--skip-blank/--no-skip-blank",
    default=True,
    show_default=True,
    help="Record pages with no visible content as blank without asking the model.",
)
def convert_command(
    inputs: tuple[str, ...],
    out_dir: Path,
    url: str | None,
    endpoint: str | None,
    prompt_file: str | None,
    concurrency: int | None,
    dpi: float | None,
    max_side: int | None,
    pages: str | None,
    anchor: str,
    force: bool,
    progress_mode: str,
    max_tokens: int,
    temperature: float,
    repeat_penalty: float,
    seed: int,
    time_limit_s: float | None,
    chunk_size: int | None,
    chunk_overlap: int,
    skip_blank: bool,
    **model_options: Any,
) -> None:
    """Convert PDFs, slide decks, documents and images into per-page text for RAG.

    INPUT may be files, folders (searched recursively) or glob patterns. Office files (PPTX, DOCX, ODP,
    XLSX, ...) are converted with LibreOffice first. A run that was stopped picks up where it left off: pages
    already finished are not redone (unless --force). Exit status 1 if any page or document failed.
    """
    if dpi is not None and max_side is not None:
        raise click.UsageError("give --dpi or --max-side, not both")
    if sum(x is not None for x in (model_options.get("model"), url, endpoint)) > 1:
        raise click.UsageError("give one of --model, --url and --endpoint")
    try:
        options = ConvertOptions(
            prompt=load_prompt(prompt_file or "document"),
            params=SamplingParams(
                max_tokens=max_tokens, temperature=temperature, repeat_penalty=repeat_penalty, seed=seed
            ),
            anchor="text-layer" if anchor == "text-layer" else "none",
            time_limit_s=time_limit_s,
            dpi=dpi,
            max_side=max_side,
            pages=parse_page_ranges(pages) if pages else None,
            concurrency=concurrency,
            force=force,
            skip_blank=skip_blank,
            chunks=ChunkOptions(size=chunk_size, overlap=chunk_overlap),
        )
    except (PagescribeError, ValueError) as exc:
        raise click.UsageError(getattr(exc, "message", str(exc))) from exc
    backend, close = _backend(url=url, endpoint=endpoint, model_options=model_options)
    try:
        _run(inputs, out_dir, backend, options, progress_mode)
    finally:
        close()


def _run(inputs: tuple[str, ...], out_dir: Path, backend: Backend, options: ConvertOptions, mode: str) -> None:
    conversion = Conversion(inputs, out_dir=out_dir, backend=backend, options=options, progress=make_progress(mode))
    try:
        for _ in conversion:
            pass
    except KeyboardInterrupt:
        click.echo("pagescribe: interrupted; run the same command again to finish the remaining pages", err=True)
        sys.exit(130)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    if conversion.summary is None or not conversion.summary.succeeded:
        sys.exit(1)


def _backend(
    *, url: str | None, endpoint: str | None, model_options: dict[str, Any]
) -> tuple[Backend, Callable[[], None]]:
    """The backend the options name, and how to release it. ``model_options`` go to ``load_engine``."""
    if endpoint is not None:
        raise click.UsageError(
            "--endpoint (SageMaker) is not available in this version yet; "
            "use --url with a pagescribe server, or --model to run the model here"
        )
    if url is not None:
        from pagescribe.pipeline.http import HttpBackend

        http = HttpBackend(url)
        return http, http.close
    from pagescribe.describe import load_engine

    try:
        engine = load_engine(**model_options)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    return EngineBackend(engine), engine.close
