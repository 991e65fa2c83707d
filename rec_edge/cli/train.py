"""`rec-edge train`: a thin mapping of options onto TrainConfig and rec_edge.train."""

from __future__ import annotations

from typing import Any

import click

from rec_edge.cli._common import echo_json, label_pairs


def _split_csv(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@click.command("train")
@click.argument("train_file", type=click.Path())
@click.option(
    "--name", help="Run name: the run is written to RUNS_DIR/NAME. [default: the file's stem]"
)
@click.option("--runs-dir", default="runs", show_default=True, help="Folder that holds runs.")
@click.option(
    "--model", help="'minilm' (embedded default), a local Hugging Face folder, or a hub id."
)
@click.option(
    "--task",
    type=click.Choice(["classify", "rank", "generate"]),
    default="classify",
    show_default=True,
    help="classify: labelled texts; rank: TRAIN_FILE holds interactions (MovieLens folder, RecBole atomic files, or JSONL with --items-file); generate (a language model): Alpaca rows (instruction, input, output), chat rows (messages), or a TOML mixture of tasks.",
)
@click.option(
    "--items-file",
    type=click.Path(dir_okay=False),
    help="rank with JSONL interactions: JSONL of {item, title}.",
)
@click.option(
    "--item-template",
    help="rank: the item's text from the item file's fields, e.g. '{title} ({year}), {genres}' "
    "(MovieLens: title, year, genres; JSONL items: their keys); requests may still name catalog "
    "items by title.",
)
@click.option(
    "--rank-test/--no-rank-test",
    default=True,
    show_default=True,
    help="rank: evaluate the test split of the interactions at the end, in PyTorch (minutes on a "
    "CPU for MovieLens-100K; the exported bundle can be evaluated instead).",
)
@click.option(
    "--history",
    default=10,
    show_default=True,
    help="rank: rated items before the target that state the preference.",
)
@click.option(
    "--negatives",
    default=1,
    show_default=True,
    help='rank: never-rated items drawn per training example, scored as "no"; each user is scored '
    "against every negative of its batch it never rated (batch size x this).",
)
@click.option(
    "--collaborative/--no-collaborative",
    default=True,
    show_default=True,
    help="rank: after training, fit per-item tables on the interactions with the encoder frozen "
    "(what users watch and like beyond the titles); the bundle adds them to the text score.",
)
@click.option(
    "--text-field", default="text", show_default=True, help="Column/key of the input text."
)
@click.option("--label-field", default="label", show_default=True, help="Column/key of the label.")
@click.option("--instruction-field", help="Column/key of a per-example instruction (optional).")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["jsonl", "csv", "tsv"]),
    help="Input format. [default: from the suffix]",
)
@click.option(
    "--validation-file",
    type=click.Path(dir_okay=False),
    help="Validation data; default: a stratified hold-out.",
)
@click.option(
    "--validation-fraction",
    default=0.1,
    show_default=True,
    help="Hold-out fraction when no --validation-file.",
)
@click.option(
    "--validation-limit",
    type=int,
    help="Evaluate each epoch on at most this many validation examples (seeded).",
)
@click.option(
    "--test-file", type=click.Path(dir_okay=False), help="Labelled test data, evaluated at the end."
)
@click.option(
    "--shots",
    type=int,
    help="Few-shot: K training examples per class (stratified, seeded); with --task rank, K in "
    "all. 0: zero-shot, nothing is trained (the labels come from TRAIN_FILE).",
)
@click.option(
    "--instruction",
    help="The task instruction, e.g. 'Decide which banking intent this message expresses.'",
)
@click.option(
    "--template",
    "templates",
    multiple=True,
    help="An instruction template with {text}, {instruction}, {labels}; repeat to mix several. The first is used at inference.",
)
@click.option(
    "--template-file",
    type=click.Path(dir_okay=False),
    help="TOML/JSON with templates, instruction, label_names.",
)
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
    "--compare-templates/--no-compare-templates",
    default=None,
    help="Train twice, on the raw text and through the instruction templates (yours or the "
    "built-in ones), and keep the run with the higher validation accuracy (the raw text on a "
    "tie). Twice the training time. [default: on for a classify run of at most 5,000 training "
    "examples with no template option; off otherwise]",
)
@click.option(
    "--label-name",
    "label_names",
    multiple=True,
    callback=label_pairs,
    help="Verbalizer: LABEL=WORDS, repeatable.",
)
@click.option(
    "--description",
    "descriptions",
    multiple=True,
    callback=label_pairs,
    help="LABEL=SENTENCE the description head embeds for LABEL, repeatable. "
    "[default: 'This is about <label name>.']",
)
@click.option(
    "--head",
    type=click.Choice(["descriptions", "linear"]),
    default="descriptions",
    show_default=True,
    help="classify: descriptions scores each text against the encoded label descriptions "
    "(zero-shot with --shots 0, labels added at export); linear is a fresh label matrix.",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=1),
    default=None,
    help="Tokens read of each input; longer ones are cut (and counted). Default: the model's own "
    "limit, at most 512 (all-MiniLM-L6-v2: 256). Lower it to train and predict faster on long texts.",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "lora", "full"]),
    default="auto",
    show_default=True,
    help="LoRA adapters or full fine-tuning; auto: full for a classify run of at most "
    "5,000 training examples (few shots), LoRA otherwise.",
)
@click.option("--lora-r", default=16, show_default=True, help="LoRA rank.")
@click.option("--lora-alpha", default=32, show_default=True, help="LoRA alpha.")
@click.option(
    "--lora-dropout",
    default=0.0,
    show_default=True,
    help="LoRA dropout (0 trains faster on a CPU at equal accuracy).",
)
@click.option(
    "--dropout",
    type=float,
    default=0.0,
    show_default=True,
    help="Set the model's dropout layers to this (MiniLM was pretrained with 0.1).",
)
@click.option(
    "--pair-loss",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Add this weight times SetFit's pair loss on each batch's texts (cosine toward 1 for "
    "the same label, 0 for different ones) to the cross-entropy; descriptions head only.",
)
@click.option(
    "--lora-layers",
    type=click.IntRange(min=1),
    help="LoRA in the last N layers only; backpropagation stops below them. [default: the "
    "upper half of the layers]",
)
@click.option(
    "--target-modules",
    callback=_split_csv,
    help="Comma-separated module names for LoRA. [default: per architecture]",
)
@click.option("--epochs", default=5.0, show_default=True, help="Training epochs.")
@click.option(
    "--min-steps",
    default=100,
    show_default=True,
    help="The schedule's floor in optimizer steps, whatever the epochs give (few examples).",
)
@click.option(
    "--max-steps", type=int, help="Train exactly this many optimizer steps (overrides --epochs)."
)
@click.option("--batch-size", default=32, show_default=True, help="Per-device batch size.")
@click.option(
    "--gradient-accumulation-steps",
    default=1,
    show_default=True,
    help="Batches per optimizer step.",
)
@click.option(
    "--learning-rate",
    type=float,
    help="Peak learning rate. [default: 1e-3 lora, 5e-5 full, times sqrt(examples / 1024) "
    "within [1/10, 1]]",
)
@click.option(
    "--early-stopping-patience",
    default=2,
    show_default=True,
    help="Evaluations without improvement before stopping (0: off). Evaluation: each epoch, or 5 "
    "times when --min-steps or --max-steps sets the length.",
)
@click.option(
    "--seed", default=42, show_default=True, help="Seed for sampling, templates, and training."
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="auto: bf16 mixed precision where the hardware computes in bf16 (AVX-512 BF16, AMX, a "
    "CUDA GPU), fp32 elsewhere; recorded in run.json. Export checks parity in fp32 either way.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Skip invalid rows (counted and reported) instead of failing.",
)
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint."
)
@click.option(
    "--keep-checkpoints", is_flag=True, help="Keep the Trainer checkpoints in the run folder."
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
    from rec_edge.config import TrainConfig
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
    keys = {"rank": ("auc", "accuracy"), "generate": ("loss",)}.get(
        config.task, ("accuracy", "macro_f1")
    ) + ("n",)
    summary: dict[str, Any] = {
        "run_dir": str(result.run_dir),
        "train_seconds": round(result.train_seconds, 1),
        "skipped_rows": result.skipped,
        "truncated_train_examples": result.truncated,
        "validation": {
            k: result.metrics["validation"][k]
            for k in (*keys, "parts")
            if k in result.metrics["validation"]
        },
        "test": {k: result.metrics["test"][k] for k in keys} if result.metrics["test"] else None,
        "collaborative": result.metrics.get("collaborative"),
        "templates_compared": result.metrics.get("templates_compared"),
        "precision": result.precision.used,
    }
    if as_json:
        echo_json(summary)
        return
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
    compared = result.metrics.get("templates_compared")
    if compared:
        accuracy = {
            name: compared[name]["validation"]["accuracy"] for name in ("raw", "instruction")
        }
        pairs = compared.get("discordant")
        noise = (
            f" (texts only one gets right: raw {pairs['raw_only']}, instruction "
            f"{pairs['instruction_only']}; one standard error of the lead: "
            f"{(pairs['raw_only'] + pairs['instruction_only']) ** 0.5:.1f} texts)"
            if pairs
            else ""
        )
        click.echo(
            f"templates compared: validation accuracy raw text {accuracy['raw']:.4f}, "
            f"instruction {accuracy['instruction']:.4f}{noise}: kept {compared['chosen']}"
        )
    stage = summary["collaborative"]
    if stage:
        click.echo(
            f"collaborative tables: validation AUC {stage['validation_auc']:.4f} with them, "
            f"{stage['validation_auc_text_only']:.4f} without (epoch {stage['best_epoch']})"
        )
