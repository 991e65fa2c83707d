"""Small helpers shared by the CLI commands (torch-free)."""

from __future__ import annotations

import json
from typing import Any

import click


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def label_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """LABEL=WORDS pairs (--label-name, --description; export's --add-label)."""
    names = {}
    for value in values:
        label, sep, words = value.partition("=")
        if not sep or not label or not words.strip():
            raise click.BadParameter(
                f"{value!r}: expected LABEL=WORDS, e.g. card_arrival='card not arrived'"
            )
        names[label] = words
    return names


def runtime_options(command: Any) -> Any:
    """The options of every command that runs a bundle (predict, embed): --provider,
    --fallback, --threads, --batch-size, declared once."""
    options = [
        click.option(
            "--provider",
            default="cpu",
            show_default=True,
            help="cpu, cuda, tensorrt, coreml, openvino, directml, ... or an onnxruntime name.",
        ),
        click.option(
            "--fallback",
            is_flag=True,
            help="Fall back to the CPU when the provider is unavailable (logged).",
        ),
        click.option(
            "--threads", type=int, help="intra-op threads. [default: onnxruntime's choice]"
        ),
        click.option("--batch-size", default=32, show_default=True, help="Texts per session run."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def input_options(command: Any) -> Any:
    """TEXTS or --input FILE (JSONL, CSV, TSV, plain lines), --text-field, --output FILE."""
    from pathlib import Path

    options = [
        click.option(
            "--input",
            "input_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="JSONL, CSV, TSV, or plain lines (one text per line).",
        ),
        click.option(
            "--text-field",
            default="text",
            show_default=True,
            help="Field of the text in JSONL/CSV/TSV input.",
        ),
        click.option(
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write JSONL here instead of stdout.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
