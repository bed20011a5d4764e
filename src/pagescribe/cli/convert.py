"""`pagescribe convert`: documents in, per-page JSONL, Markdown and chunks out."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pagescribe.cli.options import engine_options_from, model_options, sampling_from
from pagescribe.client import Client
from pagescribe.client.async_endpoint import MAX_INVOCATION_TIMEOUT_S
from pagescribe.client.transport import DEFAULT_CONCURRENCY, DEFAULT_READ_TIMEOUT_S
from pagescribe.errors import ModelError, PagescribeError
from pagescribe.models.families import Family, family_of_files, get_family
from pagescribe.models.resolve import resolve_model
from pagescribe.pipeline.chunking import ChunkOptions
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.progress import make_progress
from pagescribe.pipeline.render import parse_page_ranges
from pagescribe.pipeline.runner import Conversion
from pagescribe.prompts import load_prompt

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
@click.option(
    "--async-endpoint",
    default=None,
    metavar="NAME",
    help="Send pages to a SageMaker asynchronous endpoint through S3 (with --s3): no 60 s limit, whole corpora; "
    "a stopped run started again waits for the pages it already queued.",
)
@click.option(
    "--s3",
    "s3_prefix",
    default=None,
    metavar="s3://BUCKET/PREFIX",
    help="Where --async-endpoint requests are stored (the endpoint's role must be able to read them).",
)
@click.option(
    "--invocation-timeout",
    "invocation_timeout_s",
    type=click.IntRange(1, 3600),
    default=None,
    help="Seconds an async endpoint may spend on one page [default: 3600].",
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
    "--route",
    type=click.Choice(["auto", "vlm", "text", "ocr"]),
    default="auto",
    show_default=True,
    help="auto: each page the cheapest way that keeps its meaning (blank: skipped; born-digital text: the text "
    "layer; scanned text: Tesseract OCR; figures, charts, diagrams, tables: the vision model); vlm, text, ocr: "
    "that way for every page (text and ocr need no --model; pages they cannot read fall back and say so).",
)
@click.option(
    "--ocr-lang",
    default="eng",
    show_default=True,
    metavar="LANGS",
    help="Tesseract's languages, e.g. eng+deu (Debian packages tesseract-ocr-eng, tesseract-ocr-deu, ...).",
)
@click.option(
    "--anchor",
    type=click.Choice(["auto", "none", "text-layer", "ocr"]),
    default=None,
    help="What the model is shown beside the page image: the PDF's text layer, the OCR text, auto (the text "
    "layer, else the OCR text), or none [default: auto with --route auto, else none].",
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
@click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=None,
              help="[default: the model family's, 1024 for LLaVA-1.5]")
@click.option("--temperature", type=click.FloatRange(0, 5), default=None, help="[default: the model family's]")
@click.option("--repeat-penalty", type=click.FloatRange(0.5, 3), default=None, help="[default: 1]")
@click.option("--seed", type=int, default=None, help="[default: 0]")
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
    async_endpoint: str | None,
    s3_prefix: str | None,
    invocation_timeout_s: int | None,
    region: str | None,
    profile: str | None,
    timeout_s: float | None,
    prompt_file: str | None,
    concurrency: int | None,
    dpi: float | None,
    max_side: int | None,
    pages: str | None,
    route: str,
    ocr_lang: str,
    anchor: str | None,
    force: bool,
    progress_mode: str,
    max_tokens: int | None,
    temperature: float | None,
    repeat_penalty: float | None,
    seed: int | None,
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
    remote = RemoteTarget(
        url=url, endpoint=endpoint, region=region, profile=profile, timeout_s=timeout_s,
        async_endpoint=async_endpoint, s3_prefix=s3_prefix, invocation_timeout_s=invocation_timeout_s,
    )
    remote.check(model=model_options.get("model"))
    family = model_family(remote, model_options)
    try:
        options = ConvertOptions(
            prompt=load_prompt(prompt_file) if prompt_file else None,
            params=dataclasses.replace(
                sampling_from(max_tokens, temperature, None, repeat_penalty, seed, family),
                logprobs=0 if confidence else None,
            ),
            family=family.name if family else None,
            route=route,  # type: ignore[arg-type]  # click.Choice checked it
            ocr_lang=ocr_lang,
            anchor=anchor,  # type: ignore[arg-type]
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
    if route in ("text", "ocr") and not remote.remote and model_options.get("model") is None:
        _run(inputs, out_dir, None, options, progress_mode)  # no model: pages that need one fail (no_model)
        return
    client = model_client(remote, concurrency=concurrency, model_options=model_options)
    with client:
        _run(inputs, out_dir, client, options, progress_mode)


def _run(inputs: tuple[str, ...], out_dir: Path, client: Client | None, options: ConvertOptions, mode: str) -> None:
    # pages are cached under the model the client names (a server's, or the files loaded here), else its target
    try:
        conversion = Conversion(
            inputs, out_dir=out_dir, backend=client, options=options, progress=make_progress(mode)
        )
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
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


def model_family(remote: RemoteTarget, model_options: dict[str, Any]) -> Family | None:
    """The model family the pages are laid out and post-processed for: ``--family``, else that of the model loaded
    here (read from its files), else none (a server's or endpoint's model: LLaVA-1.5's layout, DocTags detected)."""
    options = engine_options_from(model_options)
    if options.family:
        return get_family(options.family)
    if remote.url is not None or remote.endpoint is not None:
        return None
    try:
        return family_of_files(resolve_model(options.model, mmproj=options.mmproj))
    except ModelError:  # the engine's load says what is wrong with the model, in its own words
        return None


def model_client(remote: RemoteTarget, *, concurrency: int | None, model_options: dict[str, Any]) -> Client:
    """The client the options name: a server, an endpoint, or the model loaded here (``model_options``)."""
    try:
        if remote.remote:
            return remote.client(concurrency=concurrency or DEFAULT_CONCURRENCY)
        return Client.in_process(options=engine_options_from(model_options))
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """Where ``--url``, ``--endpoint`` or ``--async-endpoint`` sends the pages, and how the client reaches it."""

    url: str | None
    endpoint: str | None
    region: str | None
    profile: str | None
    timeout_s: float | None
    async_endpoint: str | None = None
    s3_prefix: str | None = None
    invocation_timeout_s: int | None = None

    @property
    def remote(self) -> bool:
        return any(x is not None for x in (self.url, self.endpoint, self.async_endpoint))

    def check(self, *, model: str | None) -> None:
        """Refuse option mixes that cannot mean anything."""
        if sum(x is not None for x in (model, self.url, self.endpoint, self.async_endpoint)) > 1:
            raise click.UsageError("give one of --model, --url and --endpoint (or --async-endpoint)")
        aws = self.endpoint is not None or self.async_endpoint is not None
        if not aws and (self.region or self.profile):
            raise click.UsageError("--region and --profile apply to --endpoint only (and --async-endpoint)")
        if (self.async_endpoint is None) != (self.s3_prefix is None):
            raise click.UsageError("--async-endpoint and --s3 go together")
        if self.async_endpoint is None and self.invocation_timeout_s is not None:
            raise click.UsageError("--invocation-timeout applies to --async-endpoint only")
        if self.url is None and self.endpoint is None and self.timeout_s is not None:
            raise click.UsageError("--timeout applies to --url and --endpoint only")


    def client(self, *, concurrency: int) -> Client:
        """The client for the target (``ClientConfigError`` when, say, the AWS profile does not exist)."""
        if self.async_endpoint is not None:
            assert self.s3_prefix is not None
            return Client.for_async_endpoint(
                self.async_endpoint, s3_prefix=self.s3_prefix, region=self.region, profile=self.profile,
                invocation_timeout_s=self.invocation_timeout_s or MAX_INVOCATION_TIMEOUT_S,
            )
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
