"""The `pagescribe` command. Each subcommand is a module of this package and loads only when used.

Command modules sit on top of the library: they import it, nothing in the library imports them.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from pagescribe import __version__

# name -> "module:attribute"; imported on first use so `pagescribe --help` stays fast and light
COMMANDS = {
    "describe": "pagescribe.cli.describe:describe_command",
    "serve": "pagescribe.cli.serve:serve_command",
    "convert": "pagescribe.cli.convert:convert_command",
    "model": "pagescribe.cli.model:model_group",
    "endpoint": "pagescribe.cli.endpoint:endpoint_group",
    "invoke": "pagescribe.cli.invoke:invoke_command",
    "image": "pagescribe.cli.image:image_group",
    "batch": "pagescribe.cli.batch:batch_group",
    "eval": "pagescribe.cli.eval:eval_group",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            if cmd_name == "model":
                _attach_model_package(command)
            return command
        return super().get_command(ctx, cmd_name)


def _attach_model_package(group: Any) -> None:
    """`pagescribe model package` is written with the AWS helpers; it joins the `model` group here."""
    if isinstance(group, click.Group) and "package" not in group.commands:
        try:
            from pagescribe.cli.endpoint import package_command
        except ImportError:  # pragma: no cover - the AWS helpers are part of the package
            return
        group.add_command(package_command, "package")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pagescribe")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug, including llama.cpp).")
def main(verbose: int) -> None:
    """pagescribe: turn document pages into faithful text with a self-hosted vision LLM."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":  # pragma: no cover
    main()
