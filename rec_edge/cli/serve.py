"""`rec-edge serve`: one or more bundles over HTTP, micro-batched (the [serve] extra)."""

from __future__ import annotations

from pathlib import Path

import click

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
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (loopback unless told otherwise).",
)
@click.option("--port", default=8000, show_default=True, help="Port; 0 picks a free one (printed).")
@click.option(
    "--max-batch",
    default=32,
    show_default=True,
    help="Items (texts, or rank requests) gathered from the queue into one batch.",
)
@click.option(
    "--session-batch",
    type=int,
    help="Texts per session run within a batch, sorted by length. "
    "[default: on the CPU the fastest of 1, 2, 4, ... up to --max-batch, timed at load; "
    "--max-batch on other providers]",
)
@click.option(
    "--max-wait-ms",
    default=2.0,
    show_default=True,
    help="How long a batch waits for requests already being read.",
)
@click.option(
    "--max-queue",
    default=64,
    show_default=True,
    help="Items waiting per bundle; past it: 503 + Retry-After.",
)
@click.option(
    "--max-queue-ms",
    type=float,
    help="And no longer than this in waiting time, by the recent run time per item. [default: off]",
)
@click.option(
    "--max-body-bytes",
    default=1 << 20,
    show_default=True,
    help="Largest request body (413 past it).",
)
@click.option(
    "--max-texts", default=64, show_default=True, help="Texts per predict request (413 past it)."
)
@click.option(
    "--max-candidates",
    default=2000,
    show_default=True,
    help="Candidates per rank request (413 past it).",
)
@click.option(
    "--max-chars", default=10_000, show_default=True, help="Characters per text (413 past it)."
)
@click.option(
    "--timeout-s", default=30.0, show_default=True, help="Per request, queue and run (504 past it)."
)
@click.option(
    "--runs",
    default=1,
    show_default=True,
    help="Session runs in flight per bundle (with --threads: cores / runs).",
)
@click.option(
    "--spinning/--no-spinning",
    default=True,
    show_default=True,
    help="onnxruntime threads spin between runs: lower latency, more CPU.",
)
@click.option(
    "--threads",
    type=int,
    help="onnxruntime intra-op threads per run. [default: one per core]",
)
@click.option(
    "--workers", default=1, show_default=True, help="Server processes, each with every bundle."
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False),
    help="Bearer tokens, one per line: turns on auth. Beyond loopback, POST .../reload needs it.",
)
@click.option(
    "--show-paths",
    is_flag=True,
    help="GET /v1/models shows each bundle's folder (hidden from clients by default).",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stderr.",
)
@click.option(
    "--provider", default="cpu", show_default=True, help="cpu, cuda, ... or an onnxruntime name."
)
def command(paths: tuple[str, ...], named: tuple[str, ...], **options: object) -> None:
    """Serve BUNDLE folders over HTTP: POST /v1/models/NAME/predict or /rank, GET /v1/models,
    /healthz, /readyz, /metrics, /openapi.json. A bare path is named after its folder.

    \b
    rec-edge serve exports/bbc-demo --port 8000
    curl -s localhost:8000/v1/models/bbc-demo/predict -d '{"texts": ["Shares fell"]}'
    """
    from rec_edge.serve import serve

    serve(ServeConfig(bundles=bundle_names(paths, named), **options))  # type: ignore[arg-type]
