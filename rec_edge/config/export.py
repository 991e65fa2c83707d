"""TORCH-FREE: ``ExportConfig`` (`rec-edge export RUN`: an encoder run to a bundle) and
``DecoderExportConfig`` (`rec-edge export --model`: a language model to a decoder bundle)."""

from __future__ import annotations

from dataclasses import dataclass

from rec_edge.config._base import _check, option, option_problems
from rec_edge.tasks import TASKS, task_spec

RECIPE_HELP = (
    "auto (accuracy-gated, batch-invariant int8), fp32, calibrated, calibrated-per-channel, "
    "calibrated-per-channel-rr, dynamic, dynamic-per-channel, dynamic-per-channel-rr (these three "
    "need --allow-batch-variance), static, fp16, or a CPU preset: avx512-vnni, avx2, arm64."
)


@dataclass
class ExportConfig:
    """Everything `rec-edge export` needs."""

    run_dir: str
    out: str | None = option(None, "Bundle folder. [default: exports/RUN_NAME, or exports/MODEL]")
    quantize: str = option("auto", RECIPE_HELP)  # a recipe or a preset (convert.quantize)
    optimize: str = option(
        "portable",
        "Graph fusions that run on every CPU (never hardware-specific graphs).",
        choices=("none", "portable"),
    )
    max_accuracy_drop: float = option(
        1.0,
        "Accuracy points the quantized model may lose against fp32 on the gate's texts, beyond "
        "their noise (one standard error of the paired difference; 0: no loss and no allowance).",
        minimum=0.0,
    )
    allow_batch_variance: bool = option(
        False,
        "Accept a graph whose scores depend on what a text is batched with (dynamic int8).",
    )
    add_labels: dict[str, str] = option(
        help="NAME=DESCRIPTION: a label the run never saw, scored by its description's embedding "
        "(runs with the description head); repeatable.",
        factory=dict,
        flag="--add-label",
        parse="pairs",
    )
    fallback: str = option(
        "fail", "When no recipe passes the gate: fail, or ship fp32.", choices=("fail", "fp32")
    )
    eval_file: str | None = option(
        None, "Labelled data for the gate. [default: the run's validation data]", path=True
    )
    eval_limit: int | None = option(2000, "At most this many evaluation examples.", minimum=1)
    calibration_size: int = option(256, "Training texts for static calibration.", minimum=1)
    parity_atol: float = option(
        1e-4, "Largest allowed |logit difference| between PyTorch and the fp32 graph."
    )
    keep_fp32: bool = option(False, "Also keep the fp32 model in the bundle (model_fp32.onnx).")
    force: bool = option(False, "Replace an existing bundle.")
    seed: int = 42

    def __post_init__(self) -> None:
        p = option_problems(self)  # choices and minimums, as declared
        p += [
            f"add_labels[{name!r}]: the description is empty"
            for name, text in self.add_labels.items()
            if not name or not str(text).strip()
        ]
        _check(p, "ExportConfig")


GENERATIVE_TASKS = tuple(TASKS)  # a language model takes every task
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
    task: str = option(
        "generate",
        "decoder: write answers, classify by the likelihood of each label's words, or rank by "
        "P(Yes) to TALLRec's question.",
        choices=GENERATIVE_TASKS,
    )
    labels: dict[str, str] = option(  # classify: label -> its answer words
        help="decoder, classify: LABEL=WORDS, the words that answer for the label; repeatable.",
        factory=dict,
        flag="--label-name",
        parse="pairs",
    )
    instruction: str | None = option(None, "decoder: said before each input in the user's turn.")
    weights: str = option(
        "int4",
        "decoder: MatMulNBits weights; the gate widens them (int8, then fp32) if they disagree.",
        choices=WEIGHT_FORMATS,
    )
    # fused: 316 nodes for SmolLM2 against optimum's ~7,400, decode 1.5x at int4 on an Intel
    # Xeon (benchmarks/RESULTS.md, "Decoder bundles")
    graph: str = option(
        "fused",
        "decoder: fused writes a Llama-architecture model as onnxruntime's fused operators "
        "(GroupQueryAttention); other models, and optimum, go through optimum's export.",
        choices=("fused", "optimum"),
    )
    block_size: int = option(32, "decoder: weights per scale.", choices=(16, 32, 64, 128, 256))
    accuracy_level: int = option(
        4,
        "decoder: onnxruntime's MatMulNBits compute type (4: int8, the fastest on CPUs).",
        choices=(0, 1, 2, 3, 4),
    )
    # None: a zero point per block at 4 bits, none at 8 (on SmolLM2, a Q4_1 GGUF, int4 agreed
    # with fp32 on 0.761 of the probe tokens against 0.702 symmetric; int8 0.985 symmetric
    # against 0.978; benchmarks/RESULTS.md, "Decoder bundles")
    symmetric: bool | None = option(
        None,
        "decoder: quantized weights without zero points: a faster first token (about 10% on "
        "SmolLM2 at int4), a little less agreement with fp32. [default: zero points at 4 bits, "
        "none at 8]",
    )
    min_agreement: float = option(
        0.9, "decoder: the share of fp32's greedy tokens the quantized graph must pick."
    )  # below: int8, then fp32
    # on SmolLM2 untuned, zero-shot: BANKING77 and the others in benchmarks/RESULTS.md,
    # "Calibrated label scores"
    calibrate: str = option(
        "auto",
        "decoder, classify: subtract each label's prior (its probability after content-free "
        "inputs such as 'N/A'). auto: where it raises fp32's accuracy on a run's validation "
        "rows, and always without a run (an untuned model's bias toward some labels).",
        choices=("auto", "on", "off"),
    )
    max_length: int = 2048  # prompt + answer tokens the runtime accepts
    force: bool = False
    # a classify or rank run (``rec-edge train``): its validation rows judge the candidates by
    # label accuracy or AUC, at most ``max_accuracy_drop`` below fp32's (not the probes' agreement)
    run_dir: str | None = None
    max_accuracy_drop: float = 0.01

    def __post_init__(self) -> None:
        p = option_problems(self)  # choices, as declared
        if task_spec(self.task).labelled and len(self.labels) < 2:
            p.append("a classify bundle needs at least 2 labels (--label-name LABEL=WORDS)")
        p += [
            f"labels[{k!r}]: the answer words are empty"
            for k, v in self.labels.items()
            if not v.strip()
        ]
        if not 0.0 <= self.min_agreement <= 1.0:
            p.append(f"min_agreement={self.min_agreement} (must be in [0, 1])")
        if not 0.0 <= self.max_accuracy_drop <= 1.0:
            p.append(f"max_accuracy_drop={self.max_accuracy_drop} (must be in [0, 1])")
        if self.calibrate == "on" and not task_spec(self.task).labelled:
            p.append(f"calibrate=on: label priors calibrate classify bundles, not {self.task}")
        if self.run_dir is not None and task_spec(self.task).writes:
            p.append("run_dir: a run's validation rows judge classify and rank bundles only")
        if self.max_length < 2:
            p.append(f"max_length={self.max_length} (must be >= 2)")
        _check(p, "DecoderExportConfig")
