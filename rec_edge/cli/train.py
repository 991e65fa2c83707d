"""`rec-edge train`: a thin mapping of options onto TrainConfig and rec_edge.train."""

from __future__ import annotations

from typing import Any

import click

from rec_edge.cli._common import config_options, echo_json
from rec_edge.config import TrainConfig


@click.command("train")
@click.argument("train_file", type=click.Path())
@config_options(TrainConfig)  # every option of TrainConfig, declared there with its help
@click.option(
    "--no-template",
    is_flag=True,
    help="Train on the raw text alone, even with --instruction or --template-file.",
)
@click.option(
    "--with-template",
    is_flag=True,
    help="Wrap the text in the built-in instruction templates. [default: when --instruction, "
    "--template or --template-file is given; otherwise at few shots the better of the raw text "
    "and the instruction on validation (--compare-templates), and the raw text beyond]",
)
@click.option(
    "--early-stopping-patience",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="Evaluations without improvement before stopping (0: off). Evaluation: each epoch, or 5 "
    "times when --min-steps or --max-steps sets the length.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(
    no_template: bool,
    with_template: bool,
    as_json: bool,
    early_stopping_patience: int,
    **options: Any,
) -> None:
    """Tune a model on TRAIN_FILE through instruction templates.

    classify: TRAIN_FILE is JSONL, CSV or TSV with a text and a label. rank: TRAIN_FILE holds
    user-item interactions, turned into TALLRec yes/no questions about the user's preference.

    Writes runs/NAME/: the LoRA adapter, the merged model, the tokenizer, run.json (config,
    labels, templates, metrics, versions) and log.jsonl (losses and metrics per step).
    """
    from rec_edge.train import train

    if no_template and with_template:
        raise click.UsageError("--no-template and --with-template contradict; pass one of them.")
    if options["compare_templates"] and (no_template or with_template):
        raise click.UsageError(
            "--compare-templates trains both with and without the templates: drop "
            "--no-template / --with-template."
        )
    options["templates"] = list(options["templates"])
    config = TrainConfig(
        use_templates=False if no_template else True if with_template else None,
        early_stopping_patience=early_stopping_patience or None,
        **options,
    )
    result = train(config)
    summary = _summary(result, config.task)
    if as_json:
        echo_json(summary)
    else:
        _report(summary, result)


def _keys(task: str) -> tuple[str, ...]:
    """The figures a run of ``task`` reports, and its ``n``."""
    return {"rank": ("auc", "accuracy"), "generate": ("loss",)}.get(
        task, ("accuracy", "macro_f1")
    ) + ("n",)


def _summary(result: Any, task: str) -> dict[str, Any]:
    """What --json prints of a finished run."""
    keys = _keys(task)
    validation, test = result.metrics["validation"], result.metrics["test"]
    return {
        "run_dir": str(result.run_dir),
        "train_seconds": round(result.train_seconds, 1),
        "skipped_rows": result.skipped,
        "truncated_train_examples": result.truncated,
        "validation": {k: validation[k] for k in (*keys, "parts") if k in validation},
        "test": {k: test[k] for k in keys} if test else None,
        "collaborative": result.metrics.get("collaborative"),
        "templates_compared": result.metrics.get("templates_compared"),
        "precision": result.precision.used,
        "task": task,
    }


def _report(summary: dict[str, Any], result: Any) -> None:
    """The run's summary as lines for a person."""
    keys = _keys(summary["task"])
    click.echo(
        f"run written to {summary['run_dir']} in {summary['train_seconds']} s "
        f"({summary['precision']})"
    )
    if result.skipped:
        click.echo(f"skipped {result.skipped} invalid rows (listed in run.json)")
    if result.truncated:
        click.echo(
            f"{result.truncated} training text{'s were' if result.truncated != 1 else ' was'} "
            f"cut at --max-length {result.max_length} "
            "tokens (what follows was not read): raise --max-length, or shorten the template "
            "(rank: fewer --history items)"
        )
    for split in ("validation", "test"):
        m = summary[split]
        if m:
            names = {"macro_f1": "macro-F1", "auc": "AUC"}
            figures = "  ".join(f"{names.get(k, k)} {m[k]:.4f}" for k in keys[:-1])
            click.echo(f"{split}: {figures}  (n={m['n']})")
    for part, m in (summary["validation"].get("parts") or {}).items():
        click.echo(f"  {part}: accuracy {m['accuracy']:.4f}  (n={m['n']})")
    if summary["templates_compared"]:
        click.echo(_compared(summary["templates_compared"]))
    stage = summary["collaborative"]
    if stage:
        click.echo(
            f"collaborative tables: validation AUC {stage['validation_auc']:.4f} with them, "
            f"{stage['validation_auc_text_only']:.4f} without (epoch {stage['best_epoch']})"
        )


def _compared(compared: dict[str, Any]) -> str:
    """The line of a template comparison: both accuracies, the noise of the lead, the choice."""
    accuracy = {name: compared[name]["validation"]["accuracy"] for name in ("raw", "instruction")}
    pairs = compared.get("discordant")
    noise = (
        f" (texts only one gets right: raw {pairs['raw_only']}, instruction "
        f"{pairs['instruction_only']}; one standard error of the lead: "
        f"{(pairs['raw_only'] + pairs['instruction_only']) ** 0.5:.1f} texts)"
        if pairs
        else ""
    )
    return (
        f"templates compared: validation accuracy raw text {accuracy['raw']:.4f}, "
        f"instruction {accuracy['instruction']:.4f}{noise}: kept {compared['chosen']}"
    )
