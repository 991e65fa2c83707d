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
