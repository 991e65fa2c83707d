"""The `rec-edge` command line: a click group whose subcommands are imported on first use.

Lazy loading (click's documented LazyGroup pattern) keeps `rec-edge --help` and
`rec-edge predict` free of torch and fast to start.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from rec_edge._version import __version__
from rec_edge.errors import RecEdgeError

# command name -> "module:attribute"
COMMANDS = {
    "train": "rec_edge.cli.train:command",
    "export": "rec_edge.cli.export:command",
    "convert": "rec_edge.cli.convert:command",
    "predict": "rec_edge.cli.predict:command",
    "embed": "rec_edge.cli.embed:command",
    "generate": "rec_edge.cli.generate:command",
    "bench": "rec_edge.cli.bench:command",
    "serve": "rec_edge.cli.serve:command",
    "score": "rec_edge.cli.score:command",
}


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy_subcommands: dict[str, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module_name, attr = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attr} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (RecEdgeError, OSError) as error:  # OSError: a disk full, a file unreadable
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


@click.group(
    cls=LazyGroup,
    lazy_subcommands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="rec-edge")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Instruction-tune a small transformer, export it to ONNX, and serve it torch-free.

    \b
    rec-edge train    tune a model with LoRA through instruction templates -> runs/NAME
    rec-edge export   merge, export to ONNX, optimize, quantize -> exports/NAME (a bundle)
    rec-edge predict  classify or rank with a bundle (onnxruntime + tokenizers + numpy)
    rec-edge generate answer a prompt in words with a decoder bundle (export --model)
    rec-edge bench    measure bundles against PyTorch and other engines
    rec-edge serve    serve bundles over HTTP with micro-batching
    """
    ctx.obj = {"debug": debug}
