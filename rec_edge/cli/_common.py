"""Small helpers shared by the CLI commands (torch-free)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
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
        click.option(
            "--batch-size",
            default=32,
            show_default=True,
            help="At most this many texts per session run (shorter runs where they pay: run_length).",
        ),
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


def _split_csv(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _ints(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int]:
    try:
        return [int(v) for v in _names(ctx, param, value)]
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected comma-separated integers, e.g. 1,8,32"
        ) from None


# option(parse=...) -> the click callback: "csv" gives None when not given, "names" and "ints"
# a list (the field's own default list, written comma-separated, when not given)
PARSERS = {"pairs": label_pairs, "csv": _split_csv, "names": _names, "ints": _ints}


def config_option(f: Any, hint: Any) -> Any:
    """The click option of the config field ``f`` (declared with ``config.option``; ``hint``:
    its resolved type): its name, type, default, choices, bounds and help, as declared."""
    meta = f.metadata
    flag = meta["flag"] or "--" + f.name.replace("_", "-")
    decls = [flag] if flag == "--" + f.name.replace("_", "-") else [flag, f.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(t for t in typing.get_args(hint) if t is not type(None))  # X | None: X
    kind = typing.get_origin(hint) or hint
    settings: dict[str, Any] = {"help": meta["help"]}
    default = None if f.default is dataclasses.MISSING else f.default
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        settings["required"] = True
    if meta["parse"] in ("names", "ints"):  # a list field: its default list, comma-separated
        listed = ",".join(map(str, f.default_factory()))
        settings.update(callback=PARSERS[meta["parse"]], default=listed, show_default=bool(listed))
    elif meta["parse"] is not None:
        settings.update(callback=PARSERS[meta["parse"]], multiple=kind is dict)
    elif kind is list:
        settings["multiple"] = True
    elif kind is bool and default is False:
        settings.update(is_flag=True, default=False)
    elif kind is bool:  # on by default, or chosen by the run: --x/--no-x
        decls = [f"{flag}/--no-{flag[2:]}"] + decls[1:]
        settings.update(default=default, show_default=default is not None)
    else:
        settings.update(default=default, show_default=default is not None and meta["show_default"])
        if meta["choices"] is not None:
            settings["type"] = click.Choice(list(meta["choices"]))  # ints stay ints (click 8.2+)
        elif meta["path"]:
            settings["type"] = click.Path(dir_okay=False)
        elif meta["minimum"] is not None:
            bound = click.IntRange if kind is int else click.FloatRange
            settings["type"] = bound(min=meta["minimum"])
        else:
            settings["type"] = kind
    return click.option(*decls, **settings)


def config_options(
    config: type, skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None
) -> Any:
    """Every option field of the dataclass ``config`` (those declared with ``config.option``;
    ``only`` these, none of ``skip``) as click options, in the order of the fields: each option
    is declared once, in its config."""
    hints = typing.get_type_hints(config)
    chosen = [
        f
        for f in dataclasses.fields(config)
        if "help" in f.metadata and f.name not in skip and (only is None or f.name in only)
    ]

    def decorate(command: Any) -> Any:
        for f in reversed(chosen):
            command = config_option(f, hints[f.name])(command)
        return command

    return decorate
