"""`rec-edge export`: a thin mapping of options onto ExportConfig and rec_edge.export, or with
--model onto DecoderExportConfig and export_decoder (a language model that answers in words)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rec_edge.cli._common import config_options, echo_json
from rec_edge.config import DecoderExportConfig, ExportConfig
from rec_edge.tasks import task_spec

if TYPE_CHECKING:
    from rec_edge.train.runs import RunRecord

DECODER_OPTIONS = (
    "task",
    "labels",
    "instruction",
    "weights",
    "graph",
    "block_size",
    "accuracy_level",
    "symmetric",
    "min_agreement",
    "calibrate",
)


@click.command("export")
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option(
    "--model",
    help="Export this causal language model (smollm2, a .gguf file, a Hugging Face folder or "
    "hub id) as a decoder bundle instead of a run: the options under 'decoder:' apply.",
)
@config_options(ExportConfig)  # declared there, with their help
@config_options(DecoderExportConfig, only=DECODER_OPTIONS)
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
            run_dir=None if task_spec(run.task).writes else options["run_dir"],
            max_length=run.max_length,  # the bundle cuts prompts as training did
        )
        model = str(Path(options["run_dir"]) / "model")
        out = options["out"] or str(Path("exports") / run.name)
        _export_decoder(model, out, options["force"], decoder, as_json)
        return
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
                "calibration": result.calibration,
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
    if result.calibration["used"] or "rows" in result.calibration:
        click.echo(_calibration_line(result.calibration))
    click.echo(
        f"bundle written to {result.out} ({result.weights}, {result.size_bytes / 1e6:.1f} MB)"
    )


def _calibration_line(calibration: dict[str, Any]) -> str:
    said = "subtracted" if calibration["used"] else "not subtracted"
    if "rows" not in calibration:
        return (
            f"label prior: {said} (no validation rows: an untuned model's bias is the larger error)"
        )
    return (
        f"label prior: {said} (fp32 accuracy {calibration['accuracy']:.3f} without it, "
        f"{calibration['calibrated_accuracy']:.3f} with it on {calibration['rows']} validation rows)"
    )
