"""`rec-edge export`: a thin mapping of options onto ExportConfig and rec_edge.export, or with
--model onto DecoderExportConfig and export_decoder (a language model that answers in words)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rec_edge.cli._common import echo_json, label_pairs

if TYPE_CHECKING:
    from rec_edge.train.runs import RunRecord

RECIPE_HELP = (
    "auto (accuracy-gated, batch-invariant int8), fp32, calibrated, calibrated-per-channel, "
    "calibrated-per-channel-rr, dynamic, dynamic-per-channel, dynamic-per-channel-rr (these three "
    "need --allow-batch-variance), static, fp16, or a CPU preset: avx512-vnni, avx2, arm64."
)


DECODER_OPTIONS = (
    "task",
    "labels",
    "instruction",
    "weights",
    "block_size",
    "accuracy_level",
    "min_agreement",
)


@click.command("export")
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option(
    "--model",
    help="Export this causal language model (smollm2, a .gguf file, a Hugging Face folder or "
    "hub id) as a decoder bundle instead of a run: the options under 'decoder:' apply.",
)
@click.option("--out", help="Bundle folder. [default: exports/RUN_NAME, or exports/MODEL]")
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
@click.option(
    "--task",
    type=click.Choice(["generate", "classify", "rank"]),
    default="generate",
    show_default=True,
    help="decoder: write answers, classify by the likelihood of each label's words, or rank by "
    "P(Yes) to TALLRec's question.",
)
@click.option(
    "--label-name",
    "labels",
    multiple=True,
    callback=label_pairs,
    help="decoder, classify: LABEL=WORDS, the words that answer for the label; repeatable.",
)
@click.option("--instruction", help="decoder: said before each input in the user's turn.")
@click.option(
    "--weights",
    type=click.Choice(["int4", "int8", "fp32"]),
    default="int4",
    show_default=True,
    help="decoder: MatMulNBits weights; the gate widens them (int8, then fp32) if they disagree.",
)
@click.option("--block-size", default=32, show_default=True, help="decoder: weights per scale.")
@click.option(
    "--accuracy-level",
    default=4,
    show_default=True,
    help="decoder: onnxruntime's MatMulNBits compute type (4: int8, the fastest on CPUs).",
)
@click.option(
    "--min-agreement",
    default=0.9,
    show_default=True,
    help="decoder: the share of fp32's greedy tokens the quantized graph must pick.",
)
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(as_json: bool, model: str | None, **options: Any) -> None:
    """Turn the training run RUN_DIR into a deployable, self-describing bundle.

    Merged model -> ONNX (optimum, validated against PyTorch) -> portable fusions ->
    quantization with an accuracy gate -> exports/NAME/{model.onnx, tokenizer.json,
    rec_edge.json, README.md}, written to a temporary folder and renamed into place.
    """
    decoder = {name: options.pop(name) for name in DECODER_OPTIONS}
    if model is not None:
        if options["run_dir"] is not None:
            raise click.UsageError("Give RUN_DIR or --model, not both.")
        _export_decoder(model, options["out"], options["force"], decoder, as_json)
        return
    if options["run_dir"] is None:
        raise click.UsageError("Give RUN_DIR (a training run) or --model (a language model).")
    run = _decoder_run(options["run_dir"])
    if run is not None:  # a language model tuned by `rec-edge train`: its labels and instruction
        decoder.update(
            task=run.task,
            labels=run.extra.get("label_words") or {},
            instruction=run.instruction,
            # a classify or rank run's validation rows judge the weights (generate: the probes)
            run_dir=options["run_dir"] if run.task != "generate" else None,
            max_length=run.max_length,  # the bundle cuts prompts as training did
        )
        model = str(Path(options["run_dir"]) / "model")
        out = options["out"] or str(Path("exports") / run.name)
        _export_decoder(model, out, options["force"], decoder, as_json)
        return
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


def _decoder_run(run_dir: str) -> RunRecord | None:
    """The run's record if it tuned a language model (``family: decoder``), else None."""
    from rec_edge.train.runs import load_run

    run = load_run(run_dir)
    return run if run.family == "decoder" else None


def _export_decoder(
    model: str, out: str | None, force: bool, options: dict[str, Any], as_json: bool
) -> None:
    from rec_edge.config import DecoderExportConfig
    from rec_edge.export.decoder import export_decoder

    out = out or str(Path("exports") / Path(model).stem)
    result = export_decoder(DecoderExportConfig(model=model, out=out, force=force, **options))
    if as_json:
        echo_json(
            {
                "bundle_dir": str(result.out),
                "weights": result.weights,
                "gate": result.gate,
                "parity": result.parity,
                "size_bytes": result.size_bytes,
            }
        )
        return
    click.echo(f"parity with PyTorch: max |diff| {result.parity['max_abs_diff']:.2e}")
    for row in result.gate:
        metric = "auc" if "auc" in row else "accuracy"
        accuracy = (
            f"{metric} {row[metric]:.3f} on {row['rows']} validation rows "
            f"(fp32 {row[f'fp32_{metric}']:.3f}), "
            if "rows" in row
            else ""
        )
        click.echo(
            f"  {row['weights']:<5} {accuracy}agreement with fp32 {row['agreement']:.3f} over "
            f"{row['positions']} tokens, answer NLL {row['answer_nll']:.3f} "
            f"(fp32 {row['fp32_answer_nll']:.3f}), {row['size_bytes'] / 1e6:.1f} MB"
            + ("  kept" if row["kept"] else "")
        )
    click.echo(
        f"bundle written to {result.out} ({result.weights}, {result.size_bytes / 1e6:.1f} MB)"
    )
