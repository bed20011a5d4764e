"""`pagescribe invoke`: describe files with a model served elsewhere (a SageMaker endpoint or a server)."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pagescribe.cli.options import generation_options, prompt_text, sampling_from
from pagescribe.client import Client, ImageDownsizedWarning, ImageLike, Parameters, RetryPolicy
from pagescribe.errors import PagescribeError
from pagescribe.pipeline.render import parse_page_ranges, render_document
from pagescribe.pipeline.sources import sniff


@dataclass(frozen=True)
class Input:
    """One request to make: an image file as it is, or one rendered page of a document."""

    path: Path
    image: ImageLike
    page: int = 1
    page_count: int = 1

    @property
    def label(self) -> str:
        return str(self.path) if self.page_count == 1 else f"{self.path} (page {self.page}/{self.page_count})"


@click.command("invoke")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--endpoint", metavar="NAME", help="SageMaker endpoint to call (AWS region and credentials as usual).")
@click.option("--url", metavar="URL", help="pagescribe server to call, e.g. http://127.0.0.1:8080.")
@click.option("--region", help="AWS region of the endpoint [default: from the AWS configuration].")
@click.option("--profile", help="AWS profile to use [default: from the AWS configuration].")
@generation_options
@click.option("--stream", is_flag=True, help="Print the text as it is generated.")
@click.option("--pages", metavar="RANGES", help="Pages of PDF and Office files to describe, e.g. 1-3,7 [default: all].")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 3600),
    default=70.0,
    show_default=True,
    help="Seconds to wait for the answer (SageMaker ends real-time requests at 60 s).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=3,
    show_default=True,
    help="Retries when throttled, busy (429/503) or unreachable; never for a refused request.",
)
@click.option(
    "--payload-limit",
    "payload_limit_mb",
    type=click.FloatRange(min=0.01),
    default=6.0,
    show_default=True,
    help="Request size limit in MB; larger images are downsized to fit (SageMaker real-time: 6).",
)
def invoke_command(
    files: tuple[Path, ...],
    endpoint: str | None,
    url: str | None,
    region: str | None,
    profile: str | None,
    prompt: str | None,
    prompt_file: str | None,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    repeat_penalty: float | None,
    seed: int | None,
    as_json: bool,
    stream: bool,
    pages: str | None,
    timeout_s: float,
    retries: int,
    payload_limit_mb: float,
) -> None:
    """Describe images and document pages with a model on a SageMaker endpoint or a pagescribe server.

    Give --endpoint NAME (boto3; AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME is honoured) or --url URL. Images that
    would make the request exceed the payload limit are downsized, with a warning. Text goes to stdout; with
    --json, one record per image or page. Exit status 1 if any file failed.
    """
    _check_target(endpoint, url, region, profile, stream=stream, as_json=as_json)
    instruction = prompt_text(prompt, prompt_file)
    sampling = sampling_from(max_tokens, temperature, top_p, repeat_penalty, seed)  # the remote model's family
    parameters = Parameters(  # is not known here: LLaVA-1.5's defaults for what the flags leave out, as before
        max_tokens=sampling.max_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
        repeat_penalty=sampling.repeat_penalty, seed=0 if sampling.seed is None else sampling.seed,
    )
    options: dict[str, Any] = {
        "read_timeout_s": timeout_s,
        "retry": RetryPolicy(attempts=retries + 1),
        "payload_limit": round(payload_limit_mb * 1_000_000),
    }
    try:
        if endpoint is not None:
            client = Client.for_endpoint(endpoint, region=region, profile=profile, **options)
        else:
            assert url is not None
            client = Client.for_url(url, **options)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    failed = 0
    with client, _warnings_to_stderr():
        for path in files:
            failed += _invoke_file(
                client, path, instruction, parameters, pages=pages, stream=stream, as_json=as_json, many=len(files) > 1
            )
    if failed:
        sys.exit(1)


def _check_target(
    endpoint: str | None, url: str | None, region: str | None, profile: str | None, *, stream: bool, as_json: bool
) -> None:
    if (endpoint is None) == (url is None):
        raise click.UsageError("give --endpoint NAME or --url URL (exactly one)")
    if url is not None and (region or profile):
        raise click.UsageError("--region and --profile apply to --endpoint only")
    if stream and as_json:
        raise click.UsageError("give --stream or --json, not both")


def _invoke_file(
    client: Client,
    path: Path,
    instruction: str,
    parameters: Parameters,
    *,
    pages: str | None,
    stream: bool,
    as_json: bool,
    many: bool,
) -> int:
    """Describe every image or page of one file; returns 1 if it failed, else 0."""
    try:
        for item in _inputs(path, pages):
            if as_json:
                result = client.describe(item.image, prompt=instruction, **parameters)
                record = {"source": str(path), "page": item.page, "page_count": item.page_count, **result.as_dict()}
                click.echo(json.dumps(record, ensure_ascii=False))
                continue
            header = f"== {item.label} ==" if many or item.page_count > 1 else None
            _print_text(client, item, instruction, parameters, header=header, stream=stream)
    except PagescribeError as exc:
        where = "" if str(path) in exc.message else f"{path}: "
        click.echo(f"pagescribe: {where}{exc.message}", err=True)
        return 1
    return 0


def _print_text(
    client: Client, item: Input, instruction: str, parameters: Parameters, *, header: str | None, stream: bool
) -> None:
    """Print the header once the answer has begun (a refused request prints nothing), then the text."""
    if not stream:
        text = client.describe(item.image, prompt=instruction, **parameters).text
        click.echo(text if header is None else f"{header}\n{text}")
        return
    with client.stream(item.image, prompt=instruction, **parameters) as pieces:
        if header is not None:
            click.echo(header)
        try:
            for piece in pieces:
                click.echo(piece, nl=False)
                sys.stdout.flush()
        finally:
            click.echo()  # ends the line even when the stream broke off


def _inputs(path: Path, pages: str | None) -> Iterator[Input]:
    """The file itself when it is an image (sent as it is); each rendered page of a PDF or Office file."""
    if sniff(path) not in ("pdf", "office"):
        yield Input(path, path)
        return
    selected = parse_page_ranges(pages) if pages else None
    for page in render_document(path, pages=selected):
        yield Input(path, page.image, page.page, page.page_count)


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Show downsizing warnings as one plain line each, not Python's file:line warning format."""

    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, ImageDownsizedWarning):
                click.echo(f"pagescribe: warning: {message}", err=True)
            else:
                original(message, category, *args, **kwargs)

        warnings.simplefilter("always", ImageDownsizedWarning)
        warnings.showwarning = show
        yield
