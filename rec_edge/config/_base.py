"""TORCH-FREE: what every config shares: its checks' one error, its JSON form, and ``option``,
a field declared once with the help, choices and bounds that its checks and the command line
(``cli/_options.py`` builds the click options from them) both read."""

from __future__ import annotations

import dataclasses
import string
from dataclasses import MISSING, field
from typing import Any

from rec_edge.errors import ConfigError


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _check(problems: list[str], cls: str) -> None:
    if problems:
        raise ConfigError(f"Invalid {cls}: " + "; ".join(problems))


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    factory: Any = MISSING,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    flag: str | None = None,
    parse: str | None = None,
    path: bool = False,
    show_default: bool = True,
) -> Any:
    """A config field that is also a command-line option: ``help`` (its text in ``--help``),
    ``choices`` and ``minimum`` (checked by ``option_problems``, offered by the CLI), ``flag``
    (the option's name when not ``--field-name``), ``parse`` ("pairs": repeated LABEL=TEXT into a
    dict; "csv": a comma-separated list), ``path`` (a file the command reads)."""
    metadata = {
        "help": help,
        "choices": choices,
        "minimum": minimum,
        "flag": flag,
        "parse": parse,
        "path": path,
        "show_default": show_default,
    }
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def option_problems(config: Any) -> list[str]:
    """What breaks the ``choices`` and ``minimum`` of ``config``'s option fields (None passes)."""
    problems = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        choices, minimum = f.metadata.get("choices"), f.metadata.get("minimum")
        if value is None or isinstance(value, (list, dict, tuple)):
            continue
        if choices is not None and value not in choices:
            problems.append(f"{f.name}={value!r} (allowed: {', '.join(map(str, choices))})")
        elif minimum is not None and value < minimum:
            problems.append(f"{f.name}={value} (must be >= {minimum})")
    return problems


def template_fields(template: str) -> list[str]:
    """The fields an item template names; ValueError if it is not a usable template."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"not a template: {error}; write fields as {{title}}") from None
    if not names:
        raise ValueError("names no field; e.g. '{title} ({year}), {genres}'")
    if any(not n.isidentifier() for n in names):
        raise ValueError(f"field names must be plain names, got {names}")
    return names
