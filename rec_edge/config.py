"""The *Config dataclasses: stdlib only, validated in __post_init__, saved beside every artifact."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import string
from dataclasses import dataclass, field
from typing import Any

from rec_edge.errors import ConfigError

__all__ = ["ExportConfig", "ScoreConfig", "ServeConfig", "TrainConfig", "config_to_dict"]

# --method auto: a classify run with at most this many training examples fine-tunes every weight
# (few shots: up to 64 examples for each of 77 labels)
FULL_FINE_TUNING_MAX_EXAMPLES = 5000


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _check(problems: list[str], cls: str) -> None:
    if problems:
        raise ConfigError(f"Invalid {cls}: " + "; ".join(problems))


TRAIN_TASKS = ("classify", "rank", "generate")


@dataclass
class TrainConfig:
    """Everything `rec-edge train` needs. One name end to end: --lora-r -> lora_r -> run.json."""

    train_file: str
    name: str | None = None  # run folder name under runs_dir; default: the train file's stem
    runs_dir: str = "runs"
    model: str | None = None  # None: the embedded default (all-MiniLM-L6-v2)
    # classify | rank (train_file: interactions, see data.interactions) | generate (a language
    # model only: Alpaca or chat rows, or a TOML mixture of tasks, see data.instructions)
    task: str = "classify"
    items_file: str | None = None  # rank with a JSONL interactions file: item titles
    # rank: the item's text from its fields, e.g. "{title} ({year}), {genres}" (data.interactions)
    item_template: str | None = None
    rank_test: bool = True  # rank: evaluate the interactions' test split at the end (PyTorch)
    history: int = 10  # rank: rated items before the target that state the preference
    negatives: int = 1  # rank: never-rated items drawn per example; shared by the batch, "no"
    collaborative: bool = True  # rank: fit per-item tables after training (train.collab)
    text_field: str = "text"
    label_field: str = "label"
    instruction_field: str | None = None  # per-example instruction column, overrides `instruction`
    file_format: str | None = None  # jsonl | csv | tsv; None: from the file suffix
    validation_file: str | None = None
    validation_fraction: float = 0.1  # seeded stratified hold-out when no validation_file
    validation_limit: int | None = None  # evaluate each epoch on at most this many (seeded sample)
    test_file: str | None = None
    shots: int | None = None  # K examples per class, stratified and seeded; None: all
    instruction: str | None = None  # the task instruction rendered into {instruction}
    templates: list[str] = field(default_factory=list)  # empty: built-in templates of the task
    template_file: str | None = None  # TOML/JSON with templates, instruction, label_names
    # True: instruction templates; False: the raw text alone; None: templates when an instruction,
    # templates or a template file are given (and always for rank), else the raw text, which
    # scored as well as the built-in instruction at a fraction of the tokens (benchmarks/RESULTS.md)
    # on topics and intents; at few shots compare_templates then tries both
    use_templates: bool | None = None
    # classify: train once on the raw text and once through the instruction templates, keep the
    # run that scores better on validation (the raw text on a tie: fewer tokens; train.compare).
    # None: compare for a few-shot run (at most FULL_FINE_TUNING_MAX_EXAMPLES training examples)
    # that would take the raw text by default, i.e. no template option given (measured: a tie on
    # topics and intents, +0.7 and +1.3 points on sentiment at K=16 and 64; benchmarks/RESULTS.md)
    compare_templates: bool | None = None
    label_names: dict[str, str] = field(default_factory=dict)  # verbalizer: label -> words
    descriptions: dict[str, str] = field(default_factory=dict)  # label -> a sentence (the head's)
    head: str = "descriptions"  # classify: descriptions (modeling.heads) | linear (a fresh matrix)
    # tokens read of each input; None: the model's own limit, at most 512 (models.default_max_length;
    # all-MiniLM-L6-v2: 256): a cut review loses its verdict (benchmarks/RESULTS.md, few-shot)
    max_length: int | None = None
    pair_loss: float = 0.0  # classify, descriptions head: weight of the in-batch pair loss
    # auto: full fine-tuning for a classify run of at most FULL_FINE_TUNING_MAX_EXAMPLES training
    # examples, where a run is minutes either way (drug reviews K=64: +4 points over LoRA, BBC
    # +1; BANKING77 K=8 -1.4), LoRA otherwise (benchmarks/RESULTS.md, "Full fine-tuning at few shots")
    method: str = "auto"  # auto | lora | full
    lora_r: int = 16
    lora_alpha: int = 32
    # dropout costs a random mask per activation: 0 (the default) trains 1.6x faster on a CPU at
    # equal accuracy (benchmarks/RESULTS.md, "Training speed")
    lora_dropout: float = 0.0
    dropout: float | None = 0.0  # the model's own dropout layers; None: as pretrained
    lora_layers: int | None = None  # LoRA in the last N layers; None: the upper half (train.lora)
    target_modules: list[str] | None = None  # None: chosen per architecture
    epochs: float = 5.0
    min_steps: int = 100  # the schedule's floor in optimizer steps: few examples still learn
    max_steps: int | None = None  # the schedule in optimizer steps, overriding epochs and the floor
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    learning_rate: float | None = None  # None: 1e-3 for lora, 5e-5 for full
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    early_stopping_patience: int | None = 2
    seed: int = 42
    # auto: bf16 mixed precision where the hardware computes in bf16, fp32 elsewhere (train.precision)
    precision: str = "auto"
    skip_invalid: bool = False  # skip (and count) invalid rows instead of failing
    force: bool = False
    resume: bool = False
    keep_checkpoints: bool = False

    def __post_init__(self) -> None:
        p: list[str] = []
        if self.task not in TRAIN_TASKS:
            p.append(f"task={self.task!r} (allowed: {', '.join(TRAIN_TASKS)})")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            p.append(f"dropout={self.dropout} (must be in [0, 1))")
        if self.negatives < 0:
            p.append(f"negatives={self.negatives} (must be >= 0)")
        if self.history < 1:
            p.append(f"history={self.history} (must be >= 1)")
        if self.item_template is not None:
            try:
                template_fields(self.item_template)
            except ValueError as error:
                p.append(f"item_template={self.item_template!r} ({error})")
        if self.method not in ("auto", "lora", "full"):
            p.append(f"method={self.method!r} (allowed: auto, lora, full)")
        if self.precision not in ("auto", "fp32", "bf16"):
            p.append(f"precision={self.precision!r} (allowed: auto, fp32, bf16)")
        if self.file_format not in (None, "jsonl", "csv", "tsv"):
            p.append(f"file_format={self.file_format!r} (allowed: jsonl, csv, tsv)")
        if not 0.0 < self.validation_fraction < 1.0:
            p.append(f"validation_fraction={self.validation_fraction} (must be in (0, 1))")
        if self.validation_limit is not None and self.validation_limit < 1:
            p.append(f"validation_limit={self.validation_limit} (must be >= 1)")
        if self.shots is not None and self.shots < 0:
            p.append(f"shots={self.shots} (must be >= 0; 0 is zero-shot)")
        if self.head not in ("descriptions", "linear"):
            p.append(f"head={self.head!r} (allowed: descriptions, linear)")
        if self.shots == 0 and (self.task != "classify" or self.head != "descriptions"):
            p.append(
                "shots=0 (zero-shot) needs task=classify and head=descriptions: only label "
                "descriptions can score labels that have no example"
            )
        if self.pair_loss < 0:
            p.append(f"pair_loss={self.pair_loss} (must be >= 0)")
        if self.pair_loss and (self.task != "classify" or self.head != "descriptions"):
            p.append(
                f"pair_loss={self.pair_loss} needs task=classify and head=descriptions (it pulls "
                "the pooled text embeddings that the description head scores)"
            )
        if self.min_steps < 0:
            p.append(f"min_steps={self.min_steps} (must be >= 0)")
        if self.lora_layers is not None and self.lora_layers < 1:
            p.append(f"lora_layers={self.lora_layers} (must be >= 1)")
        if self.lora_layers is not None and self.target_modules:
            p.append(
                "lora_layers and target_modules together (target_modules name every adapted "
                "module, layers included: pass one of them)"
            )
        if self.max_steps is not None and self.max_steps < 1:
            p.append(f"max_steps={self.max_steps} (must be >= 1)")
        if self.max_length is not None and self.max_length < 1:
            p.append(f"max_length={self.max_length} (must be >= 1)")
        for name in (
            "lora_r",
            "lora_alpha",
            "batch_size",
            "gradient_accumulation_steps",
        ):
            if getattr(self, name) < 1:
                p.append(f"{name}={getattr(self, name)} (must be >= 1)")
        if not 0.0 <= self.lora_dropout < 1.0:
            p.append(f"lora_dropout={self.lora_dropout} (must be in [0, 1))")
        if self.epochs <= 0:
            p.append(f"epochs={self.epochs} (must be > 0)")
        if self.learning_rate is not None and self.learning_rate <= 0:
            p.append(f"learning_rate={self.learning_rate} (must be > 0)")
        if self.compare_templates and self.task != "classify":
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
        return self.task == "rank" or bool(
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
            self.task == "classify"
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
        few = self.task == "classify" and examples <= FULL_FINE_TUNING_MAX_EXAMPLES
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


@dataclass
class ExportConfig:
    """Everything `rec-edge export` needs."""

    run_dir: str
    out: str | None = None  # default: exports/<run name>
    quantize: str = "auto"  # auto | fp32 | calibrated... | dynamic... | static | fp16 | a preset
    optimize: str = "portable"  # none | portable (fusions only; never hardware-specific)
    max_accuracy_drop: float = 1.0  # accuracy points
    allow_batch_variance: bool = False  # accept graphs whose scores depend on batch-mates
    add_labels: dict[str, str] = field(default_factory=dict)  # description runs: name -> sentence
    fallback: str = "fail"  # fail | fp32
    eval_file: str | None = None
    eval_limit: int | None = 2000  # at most this many evaluation examples for the gate
    calibration_size: int = 256
    parity_atol: float = 1e-4
    keep_fp32: bool = False
    force: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        p: list[str] = []
        if self.optimize not in ("none", "portable"):
            p.append(f"optimize={self.optimize!r} (allowed: none, portable)")
        if self.fallback not in ("fail", "fp32"):
            p.append(f"fallback={self.fallback!r} (allowed: fail, fp32)")
        if self.max_accuracy_drop < 0:
            p.append(f"max_accuracy_drop={self.max_accuracy_drop} (must be >= 0)")
        if self.calibration_size < 1:
            p.append(f"calibration_size={self.calibration_size} (must be >= 1)")
        if self.eval_limit is not None and self.eval_limit < 1:
            p.append(f"eval_limit={self.eval_limit} (must be >= 1)")
        p += [
            f"add_labels[{name!r}]: the description is empty"
            for name, text in self.add_labels.items()
            if not name or not str(text).strip()
        ]
        _check(p, "ExportConfig")


BENCH_ENGINES = ("onnx", "ort-raw", "torch", "optimum")


@dataclass
class BenchConfig:
    """Everything `rec-edge bench` needs. Engines run in worker processes, interleaved."""

    bundles: list[str]
    engines: list[str] = field(default_factory=lambda: ["onnx", "ort-raw"])
    batch_sizes: list[int] = field(default_factory=lambda: [1, 32])
    seq_lengths: list[int] = field(default_factory=list)  # synthetic mode (no text_file)
    text_file: str | None = None  # realistic mode: real texts, dynamic padding
    text_field: str = "text"
    label_field: str | None = None  # when set, accuracy is measured on text_file
    threads: list[int] = field(default_factory=list)  # empty: the usable cores
    warmup: int = 5
    iterations: int = 50  # timed calls per engine and batch size
    max_texts: int = 2000  # texts read from text_file (and scored for accuracy)
    baseline: str | None = (
        None  # engine kind the ratios refer to; default torch if run, else the first
    )
    cold_start_runs: int = 3  # fresh processes per engine; 0 skips
    peak: bool = True  # measure the machine's matmul peak through onnxruntime
    out: str | None = None  # folder for bench.json, bench.md, bench.png
    plot: bool = True

    def __post_init__(self) -> None:
        p: list[str] = []
        if not self.bundles:
            p.append("bundles is empty (give at least one bundle folder)")
        unknown = [e for e in self.engines if e not in BENCH_ENGINES]
        if unknown or not self.engines:
            p.append(f"engines={self.engines} (allowed: {', '.join(BENCH_ENGINES)})")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            p.append(f"batch_sizes={self.batch_sizes} (positive integers)")
        if any(s < 4 for s in self.seq_lengths):
            p.append(f"seq_lengths={self.seq_lengths} (each >= 4)")
        if self.text_file is None and not self.seq_lengths:
            self.seq_lengths = [32, 128]
        if any(t < 1 for t in self.threads):
            p.append(f"threads={self.threads} (positive integers)")
        if self.iterations < 3 or self.warmup < 0:
            p.append(
                f"iterations={self.iterations}, warmup={self.warmup} (iterations >= 3, warmup >= 0)"
            )
        if self.baseline is not None and self.baseline not in self.engines:
            p.append(f"baseline={self.baseline!r} is not among the engines {self.engines}")
        _check(p, "BenchConfig")


@dataclass
class ServeConfig:
    """Everything `rec-edge serve` needs: the bundles by name, the socket, batching and limits."""

    bundles: dict[str, str]  # name -> bundle folder
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    max_batch: int = 32  # items (texts, or rank requests) gathered from the queue at once
    # texts per session run within a gathered batch, sorted by length; None: on the CPU the
    # fastest of 1, 2, 4, ... max_batch, timed at load (a padded batch of 32 short texts ran at
    # 0.35-0.55x the rate of the best short runs: benchmarks/RESULTS.md), max_batch elsewhere
    session_batch: int | None = None
    max_wait_ms: float = 2.0  # how long a batch waits for requests already being read
    max_queue: int = 64  # items waiting per bundle; past it: 503 + Retry-After at once
    # and, if set, no longer than this by the recent run time per item. Off by default: measured
    # on 2 cores, it did not lower the admitted p99 under overload (the HTTP loop's backlog ruled)
    # and clients that retry at once turned its refusals into a storm (benchmarks/RESULTS.md)
    max_queue_ms: float | None = None
    spinning: bool = True  # onnxruntime's threads spin between runs (lower latency, more CPU)
    max_body_bytes: int = 1 << 20
    max_texts: int = 64  # texts per predict request (candidates per rank request: max_candidates)
    max_candidates: int = 2000
    max_chars: int = 10_000  # characters per text
    timeout_s: float = 30.0  # per request, queue and run; past it: 504
    # session runs in flight per bundle, and onnxruntime intra-op threads per run (None: one per
    # usable core). On 2 cores, 1 run x 2 spinning threads served as many texts at 32 clients as
    # 2 runs x 1 thread and answered a lone request 3-4 ms sooner (benchmarks/RESULTS.md)
    runs: int = 1
    threads: int | None = None
    workers: int = 1  # server processes, each with its own copy of every bundle
    # bearer tokens, one per line; None: no auth, and POST .../reload only on a loopback host
    api_key_file: str | None = None
    show_paths: bool = False  # GET /v1/models shows the bundles' folders (clients: hidden)
    access_log: bool = True  # one JSON line per request on stderr
    provider: str = "cpu"

    def __post_init__(self) -> None:
        p: list[str] = []
        if not self.bundles:
            p.append("bundles is empty (give at least one bundle folder)")
        bad = [n for n in self.bundles if not n or not all(c.isalnum() or c in "-_." for c in n)]
        if bad:
            p.append(f"bundle names {bad} (letters, digits, '-', '_', '.' only: they go in URLs)")
        if not 0 <= self.port < 65536:
            p.append(f"port={self.port} (0..65535; 0 picks a free port)")
        for name in ("max_batch", "max_queue", "max_body_bytes", "max_texts", "max_candidates"):
            if getattr(self, name) < 1:
                p.append(f"{name}={getattr(self, name)} (must be >= 1)")
        if self.session_batch is not None and self.session_batch < 1:
            p.append(f"session_batch={self.session_batch} (must be >= 1)")
        if self.max_texts > self.max_queue:
            p.append(
                f"max_texts={self.max_texts} > max_queue={self.max_queue}: a request that large "
                "could never be queued"
            )
        if self.max_queue_ms is not None and self.max_queue_ms <= 0:
            p.append(f"max_queue_ms={self.max_queue_ms} (must be > 0)")
        if self.max_chars < 1 or self.max_wait_ms < 0 or self.timeout_s <= 0:
            p.append(
                f"max_chars={self.max_chars}, max_wait_ms={self.max_wait_ms}, "
                f"timeout_s={self.timeout_s} (max_chars >= 1, max_wait_ms >= 0, timeout_s > 0)"
            )
        if self.runs < 1 or (self.threads is not None and self.threads < 1) or self.workers < 1:
            p.append(
                f"runs={self.runs}, threads={self.threads}, workers={self.workers} (each >= 1)"
            )
        _check(p, "ServeConfig")

    @property
    def on_cpu(self) -> bool:
        return self.provider.lower() in ("cpu", "cpuexecutionprovider")

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name
            return False


SCORE_ENGINES = ("local", "ray", "spark")
SCORE_FORMATS = ("jsonl", "csv", "tsv", "parquet")


@dataclass
class ScoreConfig:
    """Everything `rec-edge score` needs: a bundle, an input, an output folder, an engine.

    The input is cut into parts of ``part_rows`` rows; each part is scored and its output file
    committed (renamed into place) alone, whatever the engine, so that parts are the same files
    on every engine and an interrupted job resumes at the first part not committed.
    """

    bundle: str
    input: str  # a file, or a folder of files of one format
    out: str  # a folder: part-NNNNN.<format>, rejects/, _job.json, and _SUCCESS.json when whole
    engine: str = "local"  # local | ray | spark
    input_format: str | None = None  # None: from the suffix (.jsonl/.json, .csv, .tsv, .parquet)
    out_format: str | None = None  # None: the input's format
    text_field: str = "text"  # classify: the column that holds the text
    all_scores: bool = False  # classify: every label's probability as well
    embed: bool = False  # classify: each row's sentence vector ("embedding") as well
    prefix: str = ""  # classify: before the output fields' names (label, score, scores)
    user_field: str = "user"  # rank: the user's id column; liked/disliked: title lists
    candidates: str | None = (
        None  # rank: a file of titles (one per line or JSONL "item"); None: catalog
    )
    k: int = 10  # rank: items kept per user
    on_error: str = "fail"  # fail: stop at the first part with bad rows | skip: rejects/ gets them
    resume: bool = False  # continue a job whose folder exists (the same job: checked)
    force: bool = False  # delete the output folder first
    # rows per part: the unit of commit, resume and distribution; None: from the input's size
    # (about 64 parts, 100 to 10,000 rows each)
    part_rows: int | None = None
    # a record over this many bytes is a row error (--on-error), never read whole or tokenized
    max_row_bytes: int = 1 << 20
    batch_size: int = 32  # texts per session run, sorted by length within a part
    # onnxruntime intra-op threads per worker; None: local with 1 worker: every core, else the
    # cores shared among the workers (ray, spark: 1)
    threads: int | None = None
    # parts scored at once: local: threads of the one process (None: 1); ray: actors, spark:
    # tasks (None: cores // threads)
    workers: int | None = None
    address: str | None = None  # ray: an existing cluster ("auto", "ray://host:port"); None: local
    master: str | None = None  # spark: e.g. "local[2]", "spark://host:7077"; None: local[workers]
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        p: list[str] = []
        if self.engine not in SCORE_ENGINES:
            p.append(f"engine={self.engine!r} (one of {', '.join(SCORE_ENGINES)})")
        for name in ("input_format", "out_format"):
            value = getattr(self, name)
            if value is not None and value not in SCORE_FORMATS:
                p.append(f"{name}={value!r} (one of {', '.join(SCORE_FORMATS)})")
        if self.on_error not in ("fail", "skip"):
            p.append(f"on_error={self.on_error!r} (fail or skip)")
        for name in ("batch_size", "k", "max_row_bytes"):
            if getattr(self, name) < 1:
                p.append(f"{name}={getattr(self, name)} (must be >= 1)")
        for name in ("threads", "workers", "part_rows"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                p.append(f"{name}={getattr(self, name)} (must be >= 1)")
        if self.resume and self.force:
            p.append("resume and force together (resume keeps the parts done, force deletes them)")
        if self.address is not None and self.engine != "ray":
            p.append(f"address is for engine 'ray' (engine is {self.engine!r})")
        if self.master is not None and self.engine != "spark":
            p.append(f"master is for engine 'spark' (engine is {self.engine!r})")
        _check(p, "ScoreConfig")


GENERATIVE_TASKS = ("generate", "classify", "rank")
WEIGHT_FORMATS = ("int4", "int8", "fp32")


@dataclass
class DecoderExportConfig:
    """`rec-edge export --model`: a causal language model (a GGUF file, a Hugging Face folder or
    hub id, or an alias such as ``smollm2``) to a decoder bundle: ONNX with its KV cache
    (optimum's ``text-generation-with-past``), weights in ``weights`` (MatMulNBits int4/int8,
    blocks of ``block_size``, ``accuracy_level`` of onnxruntime's kernels) behind a gate: label
    accuracy on a classify run's validation rows (``run_dir``), else the greedy answers'
    agreement with fp32 on probe prompts."""

    model: str
    out: str
    task: str = "generate"  # generate | classify (labels answered in words) | rank (Yes or No)
    labels: dict[str, str] = field(default_factory=dict)  # classify: label -> its answer words
    instruction: str | None = None  # classify: said before each input in the user turn
    weights: str = "int4"  # int4 | int8 | fp32
    block_size: int = 32
    accuracy_level: int = 4  # onnxruntime's MatMulNBits: 4 computes in int8 (fastest on CPUs)
    # None: a zero point per block at 4 bits, none at 8 (on SmolLM2, a Q4_1 GGUF, int4 agreed
    # with fp32 on 0.761 of the probe tokens against 0.702 symmetric; int8 0.985 symmetric
    # against 0.978; benchmarks/RESULTS.md, "Decoder bundles")
    symmetric: bool | None = None
    min_agreement: float = 0.9  # of the quantized greedy tokens with fp32's; below: int8, then fp32
    max_length: int = 2048  # prompt + answer tokens the runtime accepts
    force: bool = False
    # a classify or rank run (``rec-edge train``): its validation rows judge the candidates by
    # label accuracy or AUC, at most ``max_accuracy_drop`` below fp32's (not the probes' agreement)
    run_dir: str | None = None
    max_accuracy_drop: float = 0.01

    def __post_init__(self) -> None:
        p: list[str] = []
        if self.task not in GENERATIVE_TASKS:
            p.append(f"task={self.task!r} (allowed: {', '.join(GENERATIVE_TASKS)})")
        if self.task == "classify" and len(self.labels) < 2:
            p.append("a classify bundle needs at least 2 labels (--label-name LABEL=WORDS)")
        p += [
            f"labels[{k!r}]: the answer words are empty"
            for k, v in self.labels.items()
            if not v.strip()
        ]
        if self.weights not in WEIGHT_FORMATS:
            p.append(f"weights={self.weights!r} (allowed: {', '.join(WEIGHT_FORMATS)})")
        if self.block_size not in (16, 32, 64, 128, 256):
            p.append(f"block_size={self.block_size} (allowed: 16, 32, 64, 128, 256)")
        if self.accuracy_level not in (0, 1, 2, 3, 4):
            p.append(f"accuracy_level={self.accuracy_level} (allowed: 0 to 4)")
        if not 0.0 <= self.min_agreement <= 1.0:
            p.append(f"min_agreement={self.min_agreement} (must be in [0, 1])")
        if not 0.0 <= self.max_accuracy_drop <= 1.0:
            p.append(f"max_accuracy_drop={self.max_accuracy_drop} (must be in [0, 1])")
        if self.run_dir is not None and self.task == "generate":
            p.append("run_dir: a run's validation rows judge classify and rank bundles only")
        if self.max_length < 2:
            p.append(f"max_length={self.max_length} (must be >= 2)")
        _check(p, "DecoderExportConfig")


@dataclass(frozen=True)
class GenerationConfig:
    """How a decoder bundle writes: greedy at temperature 0, else sampled from the tokens
    within ``top_p`` of the probability mass, seeded; it stops at ``max_new_tokens``, at the
    model's end of turn, or before the first of the ``stop`` strings."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        p: list[str] = []
        if self.max_new_tokens < 1:
            p.append(f"max_new_tokens={self.max_new_tokens} (must be >= 1)")
        if self.temperature < 0:
            p.append(f"temperature={self.temperature} (must be >= 0; 0 is greedy)")
        if not 0.0 < self.top_p <= 1.0:
            p.append(f"top_p={self.top_p} (must be in (0, 1])")
        if any(not s for s in self.stop):
            p.append("stop strings must not be empty")
        _check(p, "GenerationConfig")


def template_fields(template: str) -> list[str]:
    """The fields an item template names; ValueError if it is not a usable template."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"not a template: {error}; write fields as {{title}}") from None
    if not names:
        raise ValueError("names no field; e.g. '{title} ({year}), {genres}'")
    if any(not n.isidentifier() for n in names):
        raise ValueError(f"field names must be plain names, got {names}")
    return names
