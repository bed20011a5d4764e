"""Options shared by the commands: flags derived from the settings classes, the prompt and sampling options."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import click
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from pagescribe.engine.options import EngineOptions
from pagescribe.errors import PagescribeError
from pagescribe.models.families import DEFAULT_FAMILY, FAMILIES, Family
from pagescribe.prompts import load_prompt
from pagescribe.types import SamplingParams

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=BaseModel)


#: The engine settings that `describe` and `convert` take as flags (the queue and health ones matter to servers).
MODEL_FIELDS = ("model", "mmproj", "family", "chat_template", "ctx", "threads", "slots", "batch_size",
                "image_cache_mb", "prefix_cache_mb")


def settings_options(settings: type[BaseModel], names: Sequence[str] | None = None) -> Callable[[F], F]:
    """Click options for fields of a settings class, derived from the fields themselves.

    Each field ``name`` becomes ``--name`` (or the ``flag`` / ``short`` its ``json_schema_extra`` gives) with the
    field's description, default and environment variable in its help. Every option defaults to ``None``, so what is
    not given falls through to the environment and then to the class's default (``settings_from``).
    """
    fields = settings.model_fields
    chosen = list(names) if names is not None else list(fields)

    def decorate(func: F) -> F:
        for name in reversed(chosen):
            func = _option(name, fields[name], settings)(func)
        return func

    return decorate


def _option(name: str, info: FieldInfo, settings: type[BaseModel]) -> Callable[[F], F]:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    flag = str(extra.get("flag") or "--" + name.replace("_", "-"))
    decls = [flag, *([str(extra["short"])] if "short" in extra else []), name]
    kind = _click_type(info.annotation)
    env = f"{settings.model_config.get('env_prefix', '')}{name.upper()}"
    default = info.get_default(call_default_factory=True)
    shown = "" if default in (None, [], "") else f" [default: {default}]"
    description = (info.description or name).rstrip(".")
    help_text = f"{description[:1].upper()}{description[1:]}.{shown} [env: {env}]"
    metavar = str(extra["metavar"]) if "metavar" in extra else None
    if kind is bool:
        decls[0] = f"{flag}/--no-{flag.removeprefix('--')}"
        return click.option(*decls, default=None, help=help_text)
    return click.option(*decls, type=kind, default=None, metavar=metavar, help=help_text)


def _click_type(annotation: Any) -> Any:
    """The click type for a field's annotation: optional and secret values are their inner type; lists are
    comma-separated text (the settings class splits them)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _click_type(args[0])
    if get_origin(annotation) is Literal:
        return click.Choice([str(a) for a in get_args(annotation)])
    if annotation in (int, float, bool):
        return annotation
    return str


def settings_from(settings: type[S], given: dict[str, Any]) -> S:
    """The settings for the options a command was given (unset ones left to the environment and defaults)."""
    try:
        return settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(settings_problem(exc)) from exc


def settings_problem(exc: ValidationError) -> str:
    """A validation error as one line naming each field."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())


def engine_options_from(given: dict[str, Any]) -> EngineOptions:
    """The ``EngineOptions`` for a command's ``MODEL_FIELDS`` flags."""
    return settings_from(EngineOptions, {name: given.get(name) for name in MODEL_FIELDS})


model_options = settings_options(EngineOptions, MODEL_FIELDS)
"""Where the in-process model comes from and how it runs: the ``MODEL_FIELDS`` of ``EngineOptions``."""


def generation_options(func: F) -> F:
    """The prompt and the sampling parameters."""
    for option in reversed(
        [
            click.option("--prompt", "-p", default=None, help="The instruction (default: the document prompt)."),
            click.option(
                "--prompt-file",
                default=None,
                metavar="FILE|NAME",
                help="The instruction: a text file, or a packaged prompt by name (document, markdown).",
            ),
            click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=None,
                         help="Tokens to generate per page [default: the model family's, 1024 for LLaVA-1.5]."),
            click.option("--temperature", type=click.FloatRange(0, 5), default=None,
                         help="[default: the model family's, 0 (greedy) for most]"),
            click.option("--top-p", type=click.FloatRange(0, 1), default=None, help="[default: the family's, 1]"),
            click.option("--repeat-penalty", type=click.FloatRange(0.5, 3), default=None, help="[default: 1]"),
            click.option(
                "--seed", type=int, default=None, help="Sampling seed, for repeatable output. [default: 0]"
            ),
            click.option("--json", "as_json", is_flag=True, help="One JSON record per page or image, not plain text."),
        ]
    ):
        func = option(func)
    return func


def sampling_from(
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    repeat_penalty: float | None,
    seed: int | None,
    family: Family | None = None,
) -> SamplingParams:
    """The sampling the flags ask for, the model family's recommendation for what they leave out."""
    return (family or FAMILIES[DEFAULT_FAMILY]).sampling(
        max_tokens=max_tokens, temperature=temperature, top_p=top_p, repeat_penalty=repeat_penalty, seed=seed
    )


def prompt_text(prompt: str | None, prompt_file: str | None, family: Family | None = None) -> str:
    """The user's prompt, a prompt file or packaged prompt by name, or the model family's document prompt (the
    packaged ``document`` one for LLaVA-1.5)."""
    if prompt is not None and prompt_file is not None:
        raise click.UsageError("give --prompt or --prompt-file, not both")
    if prompt is not None:
        return prompt
    if prompt_file is None:
        return (family or FAMILIES[DEFAULT_FAMILY]).document_prompt().text
    try:
        return load_prompt(prompt_file).text
    except PagescribeError as exc:
        raise click.UsageError(exc.message) from exc
