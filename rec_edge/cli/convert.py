"""`rec-edge convert`: a bundle for another runtime (ONNX Runtime Mobile's .ort, a Triton model
repository), a thin mapping onto ConvertConfig and rec_edge.export.formats."""

from __future__ import annotations

import click

from rec_edge.cli._common import echo_json


@click.command("convert")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option(
    "--to",
    type=click.Choice(["ort", "triton"]),
    required=True,
    help="ort: model.ort and its required_operators.config (ONNX Runtime Mobile), a bundle the "
    "Predictor loads too; triton: a Triton model repository (config.pbtxt, 1/model.onnx).",
)
@click.option("--out", required=True, type=click.Path(), help="The folder to write.")
@click.option("--force", is_flag=True, help="Replace --out if it holds what convert wrote.")
@click.option("--name", help="triton: the model's name. [default: the bundle folder's]")
@click.option("--max-batch-size", default=32, show_default=True, help="triton: rows a request.")
@click.option(
    "--queue-delay-us", default=2000, show_default=True, help="triton: dynamic batching's wait."
)
@click.option("--instances", default=1, show_default=True, help="triton: CPU model instances.")
@click.option("--threads", type=int, help="triton: onnxruntime intra-op threads an instance.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(bundle: str, as_json: bool, **options: object) -> None:
    """Write BUNDLE for another runtime into --out (onnx and onnxruntime's tools; no torch)."""
    from rec_edge.export.formats import ConvertConfig, convert_bundle

    out = convert_bundle(ConvertConfig(bundle=bundle, **options))  # type: ignore[arg-type]
    if as_json:
        echo_json({"out": str(out), "to": options["to"]})
    else:
        click.echo(f"{bundle} converted to {options['to']} in {out}")
