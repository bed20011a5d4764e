"""`pagescribe model ...`: list the model families, pull their published GGUF files, synthesize random-weight
pairs and inspect GGUF files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pagescribe.errors import ModelError
from pagescribe.models.families import DEFAULT_FAMILY, FAMILIES, detect_family
from pagescribe.models.presets import PRESETS
from pagescribe.models.synth import synthesize
from pagescribe.models.validate import (
    MmprojInfo,
    TextModelInfo,
    gguf_architecture,
    inspect_mmproj,
    inspect_text_model,
    validate_pair,
)


@click.group("model")
def model_group() -> None:
    """Make and check model files (GGUF)."""


@model_group.command("synth")
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="tiny",
    show_default=True,
    help="tiny and FAMILY-tiny: a few MB, for tests. The others (1b, llava-1.5-7b, qwen2.5-vl-3b, "
    "granite-docling-258m, gemma-3-4b, lightonocr-1b): real shapes and quantization layout, for benchmarks.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the two files into (created if missing).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the random weights."
)
@click.option(
    "--force", is_flag=True, help="Rewrite the files even if this preset and seed are already there."
)
def synth_command(*, preset: str, out_dir: Path, seed: int, force: bool) -> None:
    """Write a GGUF pair (text model + mmproj) of a model family's real architecture with random weights.

    The same preset and seed always give byte-identical files. The model loads and runs like a real one, at
    real speed, but its weights are random: the text it writes is meaningless.
    """
    started = time.perf_counter()
    try:
        pair = synthesize(preset, out_dir, seed=seed, overwrite=force)
    except OSError as e:
        raise click.ClickException(f"cannot write the model files into {out_dir}: {e}") from e
    for path in (pair.text, pair.mmproj):
        click.echo(f"{path}\t{_size(path.stat().st_size)}")
    click.echo(
        f"preset {preset}, seed {seed}: random weights, done in {time.perf_counter() - started:.1f} s",
        err=True,
    )


@model_group.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def inspect_command(*, paths: tuple[Path, ...]) -> None:
    """Check GGUF files the way pagescribe does before loading them, and print what they declare.

    Given one text model and one mmproj, also checks that they fit together. Exits with status 1 if any
    file has a problem.
    """
    failed = False
    texts: list[TextModelInfo] = []
    mmprojs: list[MmprojInfo] = []
    for path in paths:
        try:
            if gguf_architecture(path) == "clip":
                mmprojs.append(mmproj := inspect_mmproj(path))
                click.echo(_describe_mmproj(mmproj))
            else:
                texts.append(text := inspect_text_model(path))
                click.echo(_describe_text(text))
        except ModelError as e:
            failed = True
            click.echo(f"error: {e}", err=True)
    if len(texts) == 1 and len(mmprojs) == 1:
        try:
            validate_pair(texts[0].path, mmprojs[0].path)
            click.echo(f"pair: ok (projector output width = text embedding width = {texts[0].n_embd})")
            family = detect_family(texts[0].architecture, mmprojs[0].projector_type)
            click.echo(f"family: {family.name} ({family.title})" if family else
                       f"family: not one pagescribe knows; served with {DEFAULT_FAMILY}'s conventions and the "
                       "GGUF's own chat template (--family NAME to choose)")
        except ModelError as e:
            failed = True
            click.echo(f"error: {e}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


def _describe_text(info: TextModelInfo) -> str:
    return (
        f"{info.path}\n"
        f"  text model: {info.architecture} {info.name!r}, file type {info.file_type or 'unknown'}\n"
        f"  embedding width {info.n_embd}, {info.n_layer} layers, vocabulary {info.n_vocab}, "
        f"context {info.context_length}, chat template: {'yes' if info.chat_template else 'no'}"
    )


def _describe_mmproj(info: MmprojInfo) -> str:
    width = "not checked" if info.n_embd_out is None else str(info.n_embd_out)
    return (
        f"{info.path}\n"
        f"  mmproj: projector {info.projector_type}, output width {width}, "
        f"image {info.image_size} px in {info.patch_size} px patches"
    )


def _size(n_bytes: int) -> str:
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


@model_group.command("list")
def list_command() -> None:
    """The model families pagescribe runs, the published GGUF files to pull, and what a page costs each."""
    for family in FAMILIES.values():
        default = " (the default)" if family.name == DEFAULT_FAMILY else ""
        click.echo(f"{family.name}{default}: {family.title}")
        click.echo(f"  detected by: text architecture {'/'.join(family.text_archs)}, projector {family.projector}")
        for pub in family.published:
            note = f" ({pub.note})" if pub.note else ""
            click.echo(f"  pull: pagescribe model pull {pub.spec}{note}   "
                       f"text {pub.text_mb:,} MB + mmproj {pub.mmproj_mb:,} MB")
        click.echo(f"  image tokens per letter page at the default resolution: {family.letter_page_tokens():,} "
                   f"({family.image.kind}, fitted within {family.image.default_max_side} px)")
        click.echo(f"  test models: --preset {family.tiny_preset} (tiny), --preset {family.full_preset} (full size)")
        click.echo(f"  best for: {family.best_for}")


@model_group.command("pull")
@click.argument("spec", metavar="FAMILY|ORG/NAME[:QUANT]")
def pull_command(*, spec: str) -> None:
    """Download a GGUF pair (text model + mmproj) from the model hub into its cache, with a progress bar.

    FAMILY (see `pagescribe model list`) pulls that family's published files; ORG/NAME[:QUANT] any repository
    (QUANT picks one of several text GGUFs). An interrupted download resumes; a pulled model needs no network
    again (HF_HUB_OFFLINE=1 uses the cache). Prints the directory to pass as --model.
    """
    from pagescribe.models.hub import download_from_hub
    from pagescribe.models.resolve import resolve_model

    repo = FAMILIES[spec].published[0].spec if spec in FAMILIES else spec
    if "/" not in repo:
        raise click.UsageError(f"{spec!r} is neither a model family ({', '.join(FAMILIES)}) nor ORG/NAME[:QUANT]")
    try:
        directory = download_from_hub(repo)
        files = resolve_model(directory)
    except ModelError as e:
        raise click.ClickException(e.message) from e
    for path in (files.text, files.mmproj):
        click.echo(f"{path}\t{_size(path.stat().st_size)}")
    click.echo(f"use it with: --model {directory}", err=True)
