"""`rec-edge bench`: placeholder until the bench issue lands."""

from __future__ import annotations

import click

from rec_edge.cli._common import not_implemented


@click.command("bench")
@click.argument("bundles", nargs=-1, type=click.Path(file_okay=False))
@click.option(
    "--engines",
    default="onnx,ort-raw",
    show_default=True,
    help="Comma-separated: onnx, ort-raw, torch, optimum.",
)
@click.option(
    "--batch-sizes", default="1,32", show_default=True, help="Comma-separated batch sizes."
)
@click.option(
    "--text-file", type=click.Path(dir_okay=False), help="Real sentences (realistic mode)."
)
@click.option("--threads", default="", help="Comma-separated thread counts to sweep.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder for the JSON, Markdown and PNG reports."
)
def command(**options: object) -> None:
    """Measure latency of BUNDLES against PyTorch and other engines, interleaved."""
    not_implemented("bench", "issue 6")
