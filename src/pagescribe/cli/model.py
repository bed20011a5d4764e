"""`pagescribe model ...`: synthesize random-weight model pairs and inspect GGUF files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pagescribe.errors import ModelError
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
    help="tiny: a few MB, for tests. 1b / llava-1.5-7b: real shapes and Q4_K_M layout, for benchmarks.",
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
    """Write a LLaVA-1.5-architecture GGUF pair (text model + mmproj) with random weights.

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
