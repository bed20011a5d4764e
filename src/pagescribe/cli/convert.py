"""`pagescribe convert`: documents in, per-page JSONL, Markdown and chunks out."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pagescribe.cli.options import engine_options_from, model_options
from pagescribe.client import Client
from pagescribe.client.transport import DEFAULT_CONCURRENCY, DEFAULT_READ_TIMEOUT_S
from pagescribe.errors import PagescribeError
from pagescribe.pipeline.chunking import ChunkOptions
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.progress import make_progress
from pagescribe.pipeline.render import parse_page_ranges
from pagescribe.pipeline.runner import Conversion
from pagescribe.prompts import load_prompt
from pagescribe.types import SamplingParams

#: A server queues the pages it is sent: the last of a batch waits for those before it, so it gets longer
#: than the 70 s the client allows a SageMaker request (which SageMaker itself ends at 60 s).
SERVER_READ_TIMEOUT_S = 300.0


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
@click.option(
    "--endpoint",
    default=None,
    metavar="NAME",
    help="Send pages to a SageMaker endpoint (AWS credentials as usual; "
    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME is honoured).",
)
@click.option("--region", default=None, help="AWS region of the endpoint [default: from the AWS configuration].")
@click.option("--profile", default=None, help="AWS profile to use [default: from the AWS configuration].")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 3600),
    default=None,
    help="Seconds to wait for each page's answer from --url (default 300) or --endpoint (default 70: "
    "SageMaker ends real-time requests at 60 s).",
)
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
    "--chunk-by",
    type=click.Choice(["page", "section"]),
    default="page",
    show_default=True,
    help="page: chunks within each page; section: the document cut by its headings (across page breaks), "
    "then by --chunk-size tokens.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=None,
    help="By page: at most this many characters (default: a chunk per page); by section: this many tokens "
    "(default 512).",
)
@click.option("--chunk-overlap", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--chunk-tokenizer",
    default=None,
    metavar="FILE|ID",
    help="Count section chunks' tokens with your embedding model's tokenizer (a tokenizer.json, or a Hugging Face "
    "model id) [default: words and punctuation].",
)
@click.option(
    "--confidence/--no-confidence",
    default=False,
    show_default=True,
    help="Record each page's confidence: the geometric mean of its tokens' probabilities.",
)
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
    region: str | None,
    profile: str | None,
    timeout_s: float | None,
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
    chunk_by: str,
    chunk_size: int | None,
    chunk_overlap: int,
    chunk_tokenizer: str | None,
    confidence: bool,
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
    remote = RemoteTarget(url=url, endpoint=endpoint, region=region, profile=profile, timeout_s=timeout_s)
    remote.check(model=model_options.get("model"))
    try:
        options = ConvertOptions(
            prompt=load_prompt(prompt_file or "document"),
            params=SamplingParams(
                max_tokens=max_tokens, temperature=temperature, repeat_penalty=repeat_penalty, seed=seed,
                logprobs=0 if confidence else None,
            ),
            anchor="text-layer" if anchor == "text-layer" else "none",
            time_limit_s=time_limit_s,
            dpi=dpi,
            max_side=max_side,
            pages=parse_page_ranges(pages) if pages else None,
            concurrency=concurrency,
            force=force,
            skip_blank=skip_blank,
            chunks=ChunkOptions(
                size=chunk_size,
                overlap=chunk_overlap,
                by="section" if chunk_by == "section" else "page",
                tokenizer=chunk_tokenizer,
            ),
        )
    except (PagescribeError, ValueError) as exc:
        raise click.UsageError(getattr(exc, "message", str(exc))) from exc
    client = _client(remote, concurrency=concurrency, model_options=model_options)
    with client:
        _run(inputs, out_dir, client, options, progress_mode)


def _run(inputs: tuple[str, ...], out_dir: Path, client: Client, options: ConvertOptions, mode: str) -> None:
    # pages are cached under the model the client names (a server's, or the files loaded here), else its target
    conversion = Conversion(inputs, out_dir=out_dir, backend=client, options=options, progress=make_progress(mode))
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


def _client(remote: RemoteTarget, *, concurrency: int | None, model_options: dict[str, Any]) -> Client:
    """The client the options name: a server, an endpoint, or the model loaded here (``model_options``)."""
    try:
        if remote.url is not None or remote.endpoint is not None:
            return remote.client(concurrency=concurrency or DEFAULT_CONCURRENCY)
        return Client.in_process(options=engine_options_from(model_options))
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """Where ``--url`` or ``--endpoint`` sends the pages, and how the client reaches it."""

    url: str | None
    endpoint: str | None
    region: str | None
    profile: str | None
    timeout_s: float | None

    def check(self, *, model: str | None) -> None:
        """Refuse option mixes that cannot mean anything."""
        if sum(x is not None for x in (model, self.url, self.endpoint)) > 1:
            raise click.UsageError("give one of --model, --url and --endpoint")
        if self.endpoint is None and (self.region or self.profile):
            raise click.UsageError("--region and --profile apply to --endpoint only")
        if self.url is None and self.endpoint is None and self.timeout_s is not None:
            raise click.UsageError("--timeout applies to --url and --endpoint only")


    def client(self, *, concurrency: int) -> Client:
        """The client for the target (``ClientConfigError`` when, say, the AWS profile does not exist)."""
        if self.endpoint is not None:
            # A pooled connection per page in flight, or urllib3 drops (and warns about) the extra ones.
            return Client.for_endpoint(
                self.endpoint,
                region=self.region,
                profile=self.profile,
                read_timeout_s=self.timeout_s or DEFAULT_READ_TIMEOUT_S,
                max_connections=max(10, concurrency),
            )
        assert self.url is not None
        return Client.for_url(self.url, read_timeout_s=self.timeout_s or SERVER_READ_TIMEOUT_S)
