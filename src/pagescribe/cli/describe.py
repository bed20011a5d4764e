"""`pagescribe describe`: the main job on one machine — images and PDF pages to text, model in-process."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from pagescribe.cli.options import engine_options_from, generation_options, model_options, prompt_text, sampling_from
from pagescribe.engine.base import Engine
from pagescribe.engine.factory import load_engine
from pagescribe.engine.sinks import stream
from pagescribe.errors import PagescribeError
from pagescribe.models.families import DEFAULT_FAMILY, FAMILIES, Family
from pagescribe.models.postprocess import page_text
from pagescribe.pipeline.render import RenderedPage, count_pages, parse_page_ranges, render_document
from pagescribe.pipeline.transcribe import build_request
from pagescribe.prompts import Prompt
from pagescribe.types import GenerationRequest, GenerationResult, SamplingParams


def page_request(
    prompt: str, page: RenderedPage, params: SamplingParams, family: Family = FAMILIES[DEFAULT_FAMILY]
) -> GenerationRequest:
    """The same request `convert` sends: the instruction first (a prefix shared by every page), then the page; the
    page first for the families trained that way (an empty instruction: the page alone)."""
    instruction = Prompt(id="describe", text="") if not prompt.strip() else Prompt.from_text(prompt, name="describe")
    return build_request(instruction, page, params=params, image_first=family.image_first)


def iter_inputs(path: Path, pages: str | None) -> Iterator[RenderedPage]:
    """The pages of a PDF (or multi-page TIFF) in order, or the one image of an image file."""
    # --pages picks pages of multi-page files (PDF, TIFF); a single image is always described
    selected = parse_page_ranges(pages) if pages and count_pages(path) > 1 else None
    yield from render_document(path, pages=selected)


@click.command("describe")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@model_options
@generation_options
@click.option("--pages", default=None, metavar="RANGES", help="PDF pages to describe, e.g. 1-3,7 (default: all).")
def describe_command(
    files: tuple[Path, ...],
    prompt: str | None,
    prompt_file: str | None,
    max_tokens: int,
    temperature: float,
    top_p: float,
    repeat_penalty: float,
    seed: int,
    as_json: bool,
    pages: str | None,
    **model: Any,
) -> None:
    """Describe images and PDF pages with the vision model, loaded in this process.

    FILE may be a PNG, JPEG, WebP, GIF, BMP or TIFF image, or a PDF (each page is rendered). Text goes to
    stdout as it is generated; with --json, one record per page. Exit status 1 if any file failed.
    """
    options = engine_options_from(model)
    try:
        engine = load_engine(options)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    family = engine.family or FAMILIES[DEFAULT_FAMILY]
    instruction = prompt_text(prompt, prompt_file, family)
    params = sampling_from(max_tokens, temperature, top_p, repeat_penalty, seed, family)
    failed = 0
    try:
        for path in files:
            failed += _describe_file(engine, family, path, instruction, params, pages=pages, as_json=as_json)
    finally:
        engine.close()
    if failed:
        sys.exit(1)


def _describe_file(
    engine: Engine,
    family: Family,
    path: Path,
    instruction: str,
    params: SamplingParams,
    *,
    pages: str | None,
    as_json: bool,
) -> int:
    """Describe every page of one file; returns 1 if the file or a page failed, else 0."""
    try:
        for page in iter_inputs(path, pages):
            request = page_request(instruction, page, params, family)
            header = None if as_json else f"== {path} (page {page.page}/{page.page_count}) =="
            # an answer that needs post-processing (DocTags) is shown when it is complete, converted
            live = header is not None and family.postprocess == "none"
            result = _run(engine, request, header=header if live else None)
            text = page_text(result.text, family.postprocess)
            if header is not None and not live:
                click.echo(f"{header}\n{text}")
            if as_json:
                record = {
                    "source": str(path), "page": page.page, "page_count": page.page_count, "text": text,
                    "finish_reason": result.finish_reason, "usage": result.usage.as_dict(),
                    "timings": result.timings.as_dict(), "model": result.model,
                    "image": {"width": page.image.width, "height": page.image.height},
                }
                if text != result.text:
                    record["raw_text"] = result.text
                click.echo(json.dumps(record, ensure_ascii=False))
    except PagescribeError as exc:
        where = "" if str(path) in exc.message else f"{path}: "
        click.echo(f"pagescribe: {where}{exc.message}", err=True)
        return 1
    return 0


def _run(engine: Engine, request: GenerationRequest, *, header: str | None) -> GenerationResult:
    if header is not None:
        click.echo(header)
    for item in stream(engine, request):
        if isinstance(item, GenerationResult):
            if header is not None:
                click.echo()
            return item
        if header is not None:
            click.echo(item, nl=False)
            sys.stdout.flush()
    raise AssertionError("engine stream ended without a result")  # pragma: no cover
