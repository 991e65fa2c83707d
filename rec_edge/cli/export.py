"""`rec-edge export`: a thin mapping of options onto ExportConfig and rec_edge.export."""

from __future__ import annotations

from typing import Any

import click

from rec_edge.cli._common import echo_json, label_pairs

RECIPE_HELP = (
    "auto (accuracy-gated, batch-invariant int8), fp32, calibrated, calibrated-per-channel, "
    "calibrated-per-channel-rr, dynamic, dynamic-per-channel, dynamic-per-channel-rr (these three "
    "need --allow-batch-variance), static, fp16, or a CPU preset: avx512-vnni, avx2, arm64."
)


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", help="Bundle folder. [default: exports/RUN_NAME]")
@click.option("--quantize", default="auto", show_default=True, help=RECIPE_HELP)
@click.option(
    "--optimize",
    type=click.Choice(["none", "portable"]),
    default="portable",
    show_default=True,
    help="Graph fusions that run on every CPU (never hardware-specific graphs).",
)
@click.option(
    "--max-accuracy-drop",
    default=1.0,
    show_default=True,
    help="Accuracy points the quantized model may lose against fp32 on the gate's texts, beyond "
    "their noise (one standard error of the paired difference; 0: no loss and no allowance).",
)
@click.option(
    "--allow-batch-variance",
    is_flag=True,
    help="Accept a graph whose scores depend on what a text is batched with (dynamic int8).",
)
@click.option(
    "--fallback",
    type=click.Choice(["fail", "fp32"]),
    default="fail",
    show_default=True,
    help="When no recipe passes the gate: fail, or ship fp32.",
)
@click.option(
    "--eval-file",
    type=click.Path(dir_okay=False),
    help="Labelled data for the gate. [default: the run's validation data]",
)
@click.option(
    "--eval-limit", default=2000, show_default=True, help="At most this many evaluation examples."
)
@click.option(
    "--calibration-size",
    default=256,
    show_default=True,
    help="Training texts for static calibration.",
)
@click.option(
    "--parity-atol",
    default=1e-4,
    show_default=True,
    help="Largest allowed |logit difference| between PyTorch and the fp32 graph.",
)
@click.option(
    "--add-label",
    "add_labels",
    multiple=True,
    callback=label_pairs,
    help="NAME=DESCRIPTION: a label the run never saw, scored by its description's embedding "
    "(runs with the description head); repeatable.",
)
@click.option(
    "--keep-fp32", is_flag=True, help="Also keep the fp32 model in the bundle (model_fp32.onnx)."
)
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(as_json: bool, **options: Any) -> None:
    """Turn the training run RUN_DIR into a deployable, self-describing bundle.

    Merged model -> ONNX (optimum, validated against PyTorch) -> portable fusions ->
    quantization with an accuracy gate -> exports/NAME/{model.onnx, tokenizer.json,
    rec_edge.json, README.md}, written to a temporary folder and renamed into place.
    """
    from rec_edge.config import ExportConfig
    from rec_edge.export import export

    result = export(ExportConfig(**options), log=(lambda _: None) if as_json else click.echo)
    if as_json:
        echo_json(
            {
                "bundle_dir": str(result.bundle_dir),
                "recipe": result.recipe["name"],
                "metrics": result.metrics,
                "parity": result.parity,
                "gate": result.gate,
            }
        )
