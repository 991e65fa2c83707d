"""TORCH-FREE: ``TrainConfig``, everything `rec-edge train` needs; each field declared once (its
option's help, choices and bounds: ``option``), its checks, and the defaults it resolves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rec_edge.config._base import _check, option, option_problems, template_fields
from rec_edge.tasks import TASKS, TaskSpec

# --method auto: a classify run with at most this many training examples fine-tunes every weight
# (few shots: up to 64 examples for each of 77 labels)
FULL_FINE_TUNING_MAX_EXAMPLES = 5000

TRAIN_TASKS = tuple(TASKS)


@dataclass
class TrainConfig:
    """Everything `rec-edge train` needs. One name end to end: --lora-r -> lora_r -> run.json."""

    train_file: str
    name: str | None = option(
        None, "Run name: the run is written to RUNS_DIR/NAME. [default: the file's stem]"
    )
    runs_dir: str = option("runs", "Folder that holds runs.")
    model: str | None = option(
        None, "'minilm' (embedded default), a local Hugging Face folder, or a hub id."
    )
    # rank: train_file holds interactions (recommend.interactions); generate: a language model only
    # (data.instructions)
    task: str = option(
        "classify",
        "classify: labelled texts; rank: TRAIN_FILE holds interactions (MovieLens folder, RecBole "
        "atomic files, or JSONL with --items-file); generate (a language model): Alpaca rows "
        "(instruction, input, output), chat rows (messages), or a TOML mixture of tasks.",
        choices=TRAIN_TASKS,
    )
    items_file: str | None = option(
        None, "rank with JSONL interactions: JSONL of {item, title}.", path=True
    )
    item_template: str | None = option(
        None,
        "rank: the item's text from the item file's fields, e.g. '{title} ({year}), {genres}' "
        "(MovieLens: title, year, genres; JSONL items: their keys); requests may still name "
        "catalog items by title.",
    )
    rank_test: bool = option(
        True,
        "rank: evaluate the test split of the interactions at the end, in PyTorch (minutes on a "
        "CPU for MovieLens-100K; the exported bundle can be evaluated instead).",
    )
    history: int = option(
        10, "rank: rated items before the target that state the preference.", minimum=1
    )
    negatives: int = option(
        1,
        'rank: never-rated items drawn per training example, scored as "no"; each user is scored '
        "against every negative of its batch it never rated (batch size x this).",
        minimum=0,
    )
    collaborative: bool = option(
        True,
        "rank: after training, fit per-item tables on the interactions with the encoder frozen "
        "(what users watch and like beyond the titles); the bundle adds them to the text score.",
    )
    text_field: str = option("text", "Column/key of the input text.")
    label_field: str = option("label", "Column/key of the label.")
    instruction_field: str | None = option(
        None, "Column/key of a per-example instruction (optional)."
    )
    file_format: str | None = option(
        None,
        "Input format. [default: from the suffix]",
        choices=("jsonl", "csv", "tsv"),
        flag="--format",
    )
    validation_file: str | None = option(
        None, "Validation data; default: a stratified hold-out.", path=True
    )
    validation_fraction: float = option(0.1, "Hold-out fraction when no --validation-file.")
    validation_limit: int | None = option(
        None,
        "Evaluate each epoch on at most this many validation examples (seeded).",
        minimum=1,
    )
    test_file: str | None = option(None, "Labelled test data, evaluated at the end.", path=True)
    shots: int | None = option(
        None,
        "Few-shot: K training examples per class (stratified, seeded); with --task rank, K in "
        "all. 0: zero-shot, nothing is trained (the labels come from TRAIN_FILE).",
    )
    instruction: str | None = option(
        None,
        "The task instruction, e.g. 'Decide which banking intent this message expresses.'",
    )
    templates: list[str] = option(
        help="An instruction template with {text}, {instruction}, {labels}; repeat to mix "
        "several. The first is used at inference. [default: the task's built-in ones]",
        factory=list,
        flag="--template",
    )
    template_file: str | None = option(
        None, "TOML/JSON with templates, instruction, label_names.", path=True
    )
    # True: instruction templates; False: the raw text alone; None: templates when an instruction,
    # templates or a template file are given (and always for rank), else the raw text, which
    # scored as well as the built-in instruction at a fraction of the tokens (benchmarks/RESULTS.md)
    # on topics and intents; at few shots compare_templates then tries both. The command line
    # sets it with --no-template / --with-template.
    use_templates: bool | None = None
    # None: compare for a few-shot run (at most FULL_FINE_TUNING_MAX_EXAMPLES training examples)
    # that would take the raw text by default, i.e. no template option given (measured: a tie on
    # topics and intents, +0.7 and +1.3 points on sentiment at K=16 and 64; benchmarks/RESULTS.md)
    compare_templates: bool | None = option(
        None,
        "Train twice, on the raw text and through the instruction templates (yours or the "
        "built-in ones), and keep the run with the higher validation accuracy (the raw text on a "
        "tie). Twice the training time. [default: on for a classify run of at most 5,000 "
        "training examples with no template option; off otherwise]",
    )
    label_names: dict[str, str] = option(
        help="Verbalizer: LABEL=WORDS, repeatable.",
        factory=dict,
        flag="--label-name",
        parse="pairs",
    )
    descriptions: dict[str, str] = option(
        help="LABEL=SENTENCE the description head embeds for LABEL, repeatable. "
        "[default: 'This is about <label name>.']",
        factory=dict,
        flag="--description",
        parse="pairs",
    )
    head: str = option(
        "descriptions",
        "classify: descriptions scores each text against the encoded label descriptions "
        "(zero-shot with --shots 0, labels added at export); linear is a fresh label matrix.",
        choices=("descriptions", "linear"),
    )
    # None: models.default_max_length: a cut review loses its verdict (benchmarks/RESULTS.md)
    max_length: int | None = option(
        None,
        "Tokens read of each input; longer ones are cut (and counted). Default: the model's own "
        "limit, at most 512 (all-MiniLM-L6-v2: 256). Lower it to train and predict faster on "
        "long texts.",
        minimum=1,
    )
    # auto: full fine-tuning at few shots, where a run is minutes either way (drug reviews K=64:
    # +4 points over LoRA, BBC +1; BANKING77 K=8 -1.4; benchmarks/RESULTS.md, "Full fine-tuning
    # at few shots")
    method: str = option(
        "auto",
        "LoRA adapters or full fine-tuning; auto: full for a classify run of at most "
        "5,000 training examples (few shots), LoRA otherwise.",
        choices=("auto", "lora", "full"),
    )
    lora_r: int = option(16, "LoRA rank.", minimum=1)
    lora_alpha: int = option(32, "LoRA alpha.", minimum=1)
    # dropout costs a random mask per activation: 0 trains 1.6x faster on a CPU at equal accuracy
    # (benchmarks/RESULTS.md, "Training speed")
    lora_dropout: float = option(0.0, "LoRA dropout (0 trains faster on a CPU at equal accuracy).")
    dropout: float | None = option(  # None: as pretrained
        0.0, "Set the model's dropout layers to this (MiniLM was pretrained with 0.1)."
    )
    pair_loss: float = option(
        0.0,
        "Add this weight times SetFit's pair loss on each batch's texts (cosine toward 1 for "
        "the same label, 0 for different ones) to the cross-entropy; descriptions head only.",
        minimum=0.0,
    )
    lora_layers: int | None = option(
        None,
        "LoRA in the last N layers only; backpropagation stops below them. [default: the "
        "upper half of the layers]",
        minimum=1,
    )
    target_modules: list[str] | None = option(
        None, "Comma-separated module names for LoRA. [default: per architecture]", parse="csv"
    )
    epochs: float = option(5.0, "Training epochs.")
    min_steps: int = option(
        100,
        "The schedule's floor in optimizer steps, whatever the epochs give (few examples).",
        minimum=0,
    )
    max_steps: int | None = option(
        None, "Train exactly this many optimizer steps (overrides --epochs).", minimum=1
    )
    batch_size: int = option(32, "Per-device batch size.", minimum=1)
    gradient_accumulation_steps: int = option(1, "Batches per optimizer step.", minimum=1)
    learning_rate: float | None = option(
        None,
        "Peak learning rate. [default: 1e-3 lora, 5e-5 full, times sqrt(examples / 1024) "
        "within [1/10, 1]]",
    )
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    # None: off (the command line's --early-stopping-patience 0)
    early_stopping_patience: int | None = 2
    seed: int = option(42, "Seed for sampling, templates, and training.")
    precision: str = option(
        "auto",
        "auto: bf16 mixed precision where the hardware computes in bf16 (AVX-512 BF16, AMX, a "
        "CUDA GPU), fp32 elsewhere; recorded in run.json. Export checks parity in fp32 either way.",
        choices=("auto", "fp32", "bf16"),
    )
    skip_invalid: bool = option(
        False, "Skip invalid rows (counted and reported) instead of failing."
    )
    force: bool = option(False, "Replace an existing run folder.")
    resume: bool = option(False, "Continue an interrupted run from its last checkpoint.")
    keep_checkpoints: bool = option(False, "Keep the Trainer checkpoints in the run folder.")

    @property
    def spec(self) -> TaskSpec:
        """The task's declaration (``rec_edge.tasks``)."""
        return TASKS[self.task]

    def __post_init__(self) -> None:
        p = option_problems(self)  # choices and minimums, as declared
        if self.task not in TASKS:  # named by option_problems
            _check(p, "TrainConfig")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            p.append(f"dropout={self.dropout} (must be in [0, 1))")
        if self.item_template is not None:
            try:
                template_fields(self.item_template)
            except ValueError as error:
                p.append(f"item_template={self.item_template!r} ({error})")
        if not 0.0 < self.validation_fraction < 1.0:
            p.append(f"validation_fraction={self.validation_fraction} (must be in (0, 1))")
        if self.shots is not None and self.shots < 0:
            p.append(f"shots={self.shots} (must be >= 0; 0 is zero-shot)")
        if self.shots == 0 and (not self.spec.labelled or self.head != "descriptions"):
            p.append(
                "shots=0 (zero-shot) needs task=classify and head=descriptions: only label "
                "descriptions can score labels that have no example"
            )
        if self.pair_loss and (not self.spec.labelled or self.head != "descriptions"):
            p.append(
                f"pair_loss={self.pair_loss} needs task=classify and head=descriptions (it pulls "
                "the pooled text embeddings that the description head scores)"
            )
        if self.lora_layers is not None and self.target_modules:
            p.append(
                "lora_layers and target_modules together (target_modules name every adapted "
                "module, layers included: pass one of them)"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            p.append(f"lora_dropout={self.lora_dropout} (must be in [0, 1))")
        if self.epochs <= 0:
            p.append(f"epochs={self.epochs} (must be > 0)")
        if self.learning_rate is not None and self.learning_rate <= 0:
            p.append(f"learning_rate={self.learning_rate} (must be > 0)")
        if self.compare_templates and not self.spec.labelled:
            p.append("compare_templates needs task=classify (rank runs always use the templates)")
        if self.compare_templates and self.use_templates is not None:
            p.append(
                f"compare_templates with use_templates={self.use_templates} (the comparison "
                "trains both: drop --no-template / --with-template, or the comparison)"
            )
        if self.force and self.resume:
            p.append("force and resume together (choose one: --force replaces, --resume continues)")
        _check(p, "TrainConfig")

    def resolved_use_templates(self, template_file: dict[str, Any]) -> bool:
        """``use_templates``, or None resolved as its comment says (``template_file``: the
        keys read from --template-file)."""
        if self.use_templates is not None:
            return self.use_templates
        return self.spec.ranks or bool(
            self.templates
            or self.instruction
            or template_file.get("templates")
            or template_file.get("instruction")
        )

    def resolved_compare_templates(self, examples: int, raw_by_default: bool) -> bool:
        """``compare_templates``, or None resolved as its comment says (``raw_by_default``: no
        template option chose the instruction templates)."""
        if self.compare_templates is not None:
            return self.compare_templates
        return (
            self.spec.labelled
            and self.use_templates is None
            and raw_by_default
            and self.shots != 0
            and examples <= FULL_FINE_TUNING_MAX_EXAMPLES
        )

    def resolved_method(self, examples: int) -> str:
        """--method, else full fine-tuning for a classify run of at most
        FULL_FINE_TUNING_MAX_EXAMPLES training examples and LoRA for the rest."""
        if self.method != "auto":
            return self.method
        few = self.spec.labelled and examples <= FULL_FINE_TUNING_MAX_EXAMPLES
        return "full" if few else "lora"

    def resolved_learning_rate(self, examples: int) -> float:
        """--learning-rate, else the method's rate, lowered for small data sets: a few examples
        seen for many steps need smaller steps (sqrt(examples / 1024), at most 1, at least 1/10)."""
        if self.learning_rate is not None:
            return self.learning_rate
        base = 1e-3 if self.resolved_method(examples) == "lora" else 5e-5
        return base * min(1.0, max(0.1, (examples / 1024) ** 0.5))

    def resolved_steps(self, examples: int) -> int:
        """Optimizer steps: --max-steps, else the epochs' steps with the --min-steps floor."""
        if self.max_steps is not None:
            return self.max_steps
        per_epoch = math.ceil(examples / (self.batch_size * self.gradient_accumulation_steps))
        return max(self.min_steps, math.ceil(self.epochs * max(1, per_epoch)))
