"""`rec-edge serve`: one or more bundles over HTTP, micro-batched (the [serve] extra)."""

from __future__ import annotations

from pathlib import Path

import click

from rec_edge.cli._common import config_options
from rec_edge.config import ServeConfig


def bundle_names(paths: tuple[str, ...], named: tuple[str, ...]) -> dict[str, str]:
    """``NAME=PATH`` pairs and bare paths (named after their folder), names unique."""
    pairs = [(Path(p).resolve().name, p) for p in paths]
    for item in named:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{item!r}: expected NAME=PATH", param_hint="--bundle")
        pairs.append((name, path))
    if not pairs:
        raise click.UsageError("Give at least one bundle: BUNDLE... or --bundle NAME=PATH.")
    bundles: dict[str, str] = {}
    for name, path in pairs:
        if name in bundles:
            raise click.UsageError(
                f"Two bundles are named {name!r}; name them: --bundle other={path}"
            )
        bundles[name] = path
    return bundles


@click.command("serve")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--bundle",
    "named",
    multiple=True,
    metavar="NAME=PATH",
    help="A bundle under a name (repeatable).",
)
@config_options(ServeConfig)  # declared there, with their help
def command(paths: tuple[str, ...], named: tuple[str, ...], **options: object) -> None:
    """Serve BUNDLE folders over HTTP: POST /v1/models/NAME/predict or /rank, GET /v1/models,
    /healthz, /readyz, /metrics, /openapi.json. A bare path is named after its folder.

    \b
    rec-edge serve exports/bbc-demo --port 8000
    curl -s localhost:8000/v1/models/bbc-demo/predict -d '{"texts": ["Shares fell"]}'
    """
    from rec_edge.serve import serve

    serve(ServeConfig(bundles=bundle_names(paths, named), **options))  # type: ignore[arg-type]
