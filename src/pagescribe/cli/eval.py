"""`pagescribe eval`: score a backend on a page set, or compare two scores."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from pagescribe import __version__
from pagescribe.cli.convert import RemoteTarget, model_client, model_family
from pagescribe.cli.options import model_options, sampling_from
from pagescribe.client import Client
from pagescribe.errors import PagescribeError
from pagescribe.eval.backends import (
    BACKENDS,
    MODEL_BACKENDS,
    Backend,
    BackendRun,
    backend_options,
    read_outputs,
    run_backend,
)
from pagescribe.eval.pageset import PageSet, load_pageset
from pagescribe.eval.results import compare_rows, evaluate, load_result
from pagescribe.eval.tables import print_compare, print_result
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.progress import make_progress


class _DefaultGroup(click.Group):
    """A group whose ``run`` command is also what ``pagescribe eval PAGESET ...`` means."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("eval", cls=_DefaultGroup)
def eval_group() -> None:
    """Score what a backend writes for a page set: pass/fail checks, word recall, character error rate (CER), the
    routing against each page's expected route, and pages per minute.

    \b
      pagescribe eval PAGESET --backend text-layer|ocr|auto|vlm [--model M | --url URL | --endpoint NAME]
      pagescribe eval PAGESET --records DIR      score what `convert` (or any tool) already wrote
      pagescribe eval compare A.json B.json      two `--json` results side by side

    A page set is a folder of page files (PDFs, PNG, JPEG, TIFF) and a pageset.jsonl with one line per page: its
    category, expected route, reference text and checks (docs/eval.md). scripts/build_pageset.py builds one.
    `pagescribe eval run --help` lists every option.
    """


@eval_group.command("run")
@click.argument("pageset", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="text-layer: the PDF's own text (no model); ocr: Tesseract (no model); auto: the page router; "
    "vlm: every page through the model, without an anchor.",
)
@click.option(
    "--records",
    "records_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Score outputs already written instead: a convert output folder, or JSONL lines of id and text.",
)
@model_options
@click.option("--url", default=None, metavar="URL", help="The model of a pagescribe server (auto, vlm).")
@click.option("--endpoint", default=None, metavar="NAME", help="The model of a SageMaker endpoint (auto, vlm).")
@click.option("--region", default=None, help="AWS region of the endpoint.")
@click.option("--profile", default=None, help="AWS profile for the endpoint.")
@click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=None,
              help="Tokens the model may write per page [default: the model family's].")
@click.option("--ocr-lang", default="eng", show_default=True, help="Tesseract languages, e.g. eng+deu.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 512), default=None, help="Pages in flight.")
@click.option(
    "--work",
    "work_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the conversion here (pages/ in, out/ the convert output; both replaced) [default: a temporary "
    "folder].",
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every result (per page, per check, per category, routing, timings) to this file.")
@click.option("--failures", type=click.IntRange(0), default=10, show_default=True,
              help="Failed checks to list after the table.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "quiet"]), default="auto",
              show_default=True, help="Progress of the conversion, on stderr.")
def run_command(
    pageset: Path,
    backend: Backend | None,
    records_path: Path | None,
    url: str | None,
    endpoint: str | None,
    region: str | None,
    profile: str | None,
    max_tokens: int | None,
    ocr_lang: str,
    concurrency: int | None,
    work_dir: Path | None,
    json_out: Path | None,
    failures: int,
    progress_mode: str,
    **model_flags: Any,
) -> None:
    """Score a backend on PAGESET (a page set folder, or its pageset.jsonl)."""
    if (backend is None) == (records_path is None):
        raise click.UsageError("give --backend (to convert the pages) or --records (to score outputs), not both")
    remote = RemoteTarget(url=url, endpoint=endpoint, region=region, profile=profile, timeout_s=None)
    remote.check(model=model_flags.get("model"))
    wants_model = remote.remote or model_flags.get("model") is not None
    if wants_model and backend not in MODEL_BACKENDS:
        raise click.UsageError("--model, --url and --endpoint go with --backend auto or vlm")
    try:
        pages = load_pageset(pageset)
        if records_path is not None:
            run = read_outputs(records_path, pages)
            config: dict[str, Any] = {"records": str(records_path)}
            name = "records"
        else:
            assert backend is not None
            run, config = _convert(pages, backend, remote, model_flags, max_tokens=max_tokens, ocr_lang=ocr_lang,
                                   concurrency=concurrency, work_dir=work_dir, progress_mode=progress_mode)
            name = backend
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    result = evaluate(pages, run.outputs, backend=name, config={**config, "pagescribe": __version__},
                      elapsed_s=run.elapsed_s)
    console = _console()
    print_result(result, console, failures=failures)
    if run.unmatched:
        console.print(f"note: {run.unmatched} records matched no page of the set", highlight=False)
    if json_out is not None:
        result.write(json_out)
        console.print(f"wrote {json_out}", highlight=False)


def _convert(
    pages: PageSet,
    backend: Backend,
    remote: RemoteTarget,
    model_flags: dict[str, Any],
    *,
    max_tokens: int | None,
    ocr_lang: str,
    concurrency: int | None,
    work_dir: Path | None,
    progress_mode: str,
) -> tuple[BackendRun, dict[str, Any]]:
    """Run the backend over the page set (with the model the flags name, for auto and vlm)."""
    family = model_family(remote, model_flags) if backend in MODEL_BACKENDS else None
    options = backend_options(
        backend,
        ConvertOptions(
            params=sampling_from(max_tokens, None, None, None, None, family),
            family=family.name if family else None,
            ocr_lang=ocr_lang,
            concurrency=concurrency,
        ),
    )
    client: Client | None = None
    if backend in MODEL_BACKENDS:
        client = model_client(remote, concurrency=concurrency, model_options=model_flags)
    with contextlib.ExitStack() as stack:
        if client is not None:
            stack.enter_context(client)
        folder = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pagescribe-eval-")))
        run = run_backend(pages, backend, work_dir=folder, client=client, options=options,
                          progress=make_progress(progress_mode))
        config = {
            "backend": backend,
            "model": client.model_id() if client is not None else None,
            "target": client.target if client is not None else None,
            "route": options.route,
            "anchor": options.anchor,
            "ocr_lang": ocr_lang,
            "max_tokens": options.params.max_tokens if client is not None else None,
            "concurrency": concurrency,
            "work": str(work_dir) if work_dir else None,
        }
    return run, config


def _console() -> Console:
    """Rich's console, 120 columns wide when the output is not a terminal (a log, a pipe), where it would be 80."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


@eval_group.command("compare")
@click.argument("first", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="A.json")
@click.argument("second", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="B.json")
def compare_command(first: Path, second: Path) -> None:
    """Two `pagescribe eval --json` results side by side, per category, with B minus A."""
    try:
        a, b = load_result(first), load_result(second)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    print_compare([str(first), str(second)], [a, b], compare_rows(a, b), _console())
