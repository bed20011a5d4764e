"""Options shared by the commands that ask the model something (`describe`, `invoke`, `convert`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pagescribe.types import SamplingParams

F = TypeVar("F", bound=Callable[..., Any])


def model_options(func: F) -> F:
    """Where the in-process model comes from and how it runs."""
    for option in reversed(
        [
            click.option(
                "--model",
                "-m",
                "model",
                default=None,
                metavar="PATH|DIR|ORG/NAME",
                help="Text GGUF, a directory with the GGUF pair, or a hub repo id. "
                "Default: $PAGESCRIBE_MODEL, then /opt/ml/model.",
            ),
            click.option(
                "--mmproj",
                default=None,
                metavar="PATH",
                help="The vision projector GGUF, if not found beside the model.",
            ),
            click.option(
                "--ctx",
                "n_ctx",
                type=click.IntRange(256, 131072),
                default=4096,
                show_default=True,
                help="Context window in tokens.",
            ),
            click.option(
                "--slots",
                type=click.IntRange(1, 64),
                default=1,
                show_default=True,
                help="Pages generated together by continuous batching (more helps `convert` on many cores).",
            ),
            click.option(
                "--threads",
                "n_threads",
                type=click.IntRange(1, 1024),
                default=None,
                help="CPU threads (default: all available).",
            ),
            click.option(
                "--chat-template",
                "chat_template_file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="A Jinja2 chat template file to use instead of the model's own.",
            ),
        ]
    ):
        func = option(func)
    return func


def generation_options(func: F) -> F:
    """The prompt and the sampling parameters."""
    for option in reversed(
        [
            click.option("--prompt", "-p", default=None, help="The instruction (default: the document prompt)."),
            click.option(
                "--prompt-file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="Read the instruction from a file.",
            ),
            click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=1024, show_default=True),
            click.option("--temperature", type=click.FloatRange(0, 5), default=0.0, show_default=True),
            click.option("--top-p", type=click.FloatRange(0, 1), default=1.0, show_default=True),
            click.option("--repeat-penalty", type=click.FloatRange(0.5, 3), default=1.0, show_default=True),
            click.option(
                "--seed", type=int, default=0, show_default=True, help="Sampling seed, for repeatable output."
            ),
            click.option("--json", "as_json", is_flag=True, help="One JSON record per page or image, not plain text."),
        ]
    ):
        func = option(func)
    return func


def sampling_from(
    max_tokens: int, temperature: float, top_p: float, repeat_penalty: float, seed: int
) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens, temperature=temperature, top_p=top_p, repeat_penalty=repeat_penalty, seed=seed
    )


def prompt_text(prompt: str | None, prompt_file: Path | None) -> str:
    """The user's prompt, or the packaged document prompt."""
    if prompt is not None and prompt_file is not None:
        raise click.UsageError("give --prompt or --prompt-file, not both")
    if prompt_file is not None:
        return prompt_file.read_text(encoding="utf-8")
    if prompt is not None:
        return prompt
    from pagescribe.prompts import load_prompt

    return load_prompt("document").text
