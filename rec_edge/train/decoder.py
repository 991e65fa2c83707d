"""TORCH: LoRA (peft) on a causal language model through its chat format, the loss on the answer.

A classify run: the instruction and the text in the user's turn, the label's words (then the end
of the turn) in the assistant's; a rank run (TALLRec): the user's liked and disliked titles and a
candidate in the user's turn (``data.prompts``), "Yes" or "No" in the assistant's; a generate
run: Alpaca or chat rows, or a mixture of tasks (``train.generate``). Only the answer's tokens
carry the loss (``train.answers``). The schedule is counted in optimizer steps (at least ``min_steps``: a few examples still learn), AdamW with a linear
warm-up and decay, bf16 autocast where the CPU computes in bf16. At the end the adapter is merged
into the weights and the run folder holds a plain model (``rec-edge export RUN`` takes it from
there); run.json says ``family: decoder`` and what the bundle needs (labels, their words, the
instruction). Validation: each text's label is the one whose words are the likeliest answer;
a rank run's AUC of log P(Yes) - log P(No).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.config import TrainConfig, config_to_dict
from rec_edge.convert.causal import ChatFormat, chat_format, load_causal_lm
from rec_edge.data.prompts import (
    RANK_ANSWERS,
    RANK_CANDIDATE,
    RANK_HISTORY,
    RANK_INSTRUCTION,
    USER_TEMPLATE,
    fit_prompt,
    label_instruction,
    rank_candidate,
    rank_history,
)
from rec_edge.data.readers import Example
from rec_edge.data.tasks import read_splits, run_name
from rec_edge.metrics import classification_report, pair_report
from rec_edge.models import resolve_model
from rec_edge.recommend.protocols import PointwiseExample
from rec_edge.tasks import task_spec
from rec_edge.train.answers import DecoderTask, Row, answered, likeliest, pad, token_ids
from rec_edge.train.generate import generate_task
from rec_edge.train.precision import bf16_hardware, resolve_precision
from rec_edge.train.runs import (
    RUN_FILE,
    TrainResult,
    finish_run_dir,
    prepare_run_dir,
    run_inputs,
)
from rec_edge.versions import machine, versions

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_LEARNING_RATE = 1e-3  # LoRA's
MAX_BATCH = 8  # sequences a step: a causal LM's activations are long on a CPU
DEFAULT_MAX_LENGTH = 512  # prompt + answer tokens; longer prompts lose the end of the text


def train_decoder(config: TrainConfig) -> TrainResult:
    """A LoRA classify or rank run of a causal language model (see the module's docstring)."""
    import torch

    started = time.perf_counter()
    final = Path(config.runs_dir) / run_name(config)
    work = prepare_run_dir(final, config.force, False, run_inputs(config))
    precision = resolve_precision(config.precision, bf16_hardware())
    if precision.note:
        print(f"precision: {precision.note}", file=sys.stderr)
    torch.manual_seed(config.seed)
    model, tokenizer = load_causal_lm(resolve_model(config.model))
    fmt = chat_format(tokenizer)
    task = TASKS[config.task](config, tokenizer, fmt)
    model = _with_lora(model, config)
    losses = _fit(model, task.rows, config, precision.used == "bf16")
    model = model.merge_and_unload().eval()
    metrics = task.evaluate(model)
    model.save_pretrained(work / "model")
    tokenizer.save_pretrained(work / "model")
    seconds = time.perf_counter() - started
    max_length = config.max_length or DEFAULT_MAX_LENGTH
    run = {
        "family": "decoder",
        "task": config.task,
        "name": final.name,
        "truncated": {"train": 0},  # a task may say otherwise
        **task.record,
        "templates": {},  # the encoder family's; a decoder's prompt is its chat format
        "config": config_to_dict(replace(config, learning_rate=_learning_rate(config))),
        "steps": len(losses),
        # the answer tokens' mean loss over the first and the last tenth of the steps
        "loss": {
            "first": _mean(losses[: max(1, len(losses) // 10)]),
            "last": _mean(losses[-max(1, len(losses) // 10) :]),
        },
        "examples": len(task.rows),
        "skipped": task.skipped,
        "max_length": max_length,
        "precision": precision.to_dict(),
        "metrics": metrics,
        "train_seconds": round(seconds, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": machine(),
    }
    (work / RUN_FILE).write_text(json.dumps(run, indent=2), encoding="utf-8")
    finish_run_dir(work, final)
    if task_spec(config.task).ranks and config.collaborative:
        from rec_edge.recommend.collab import STAGE_METRICS, fit_collaborative

        stage = fit_collaborative(final)  # the tables and the stack over the decoder's score
        metrics["collaborative"] = {k: stage[k] for k in STAGE_METRICS}
    return TrainResult(final, metrics, seconds, len(task.skipped), 0, precision, max_length)


def _classify_task(config: TrainConfig, tokenizer: Any, fmt: ChatFormat) -> DecoderTask:
    """The label's words (then the end of the turn) answer the instruction and the text."""
    train, validation, test, skipped = read_splits(config)
    labels = sorted({str(e.label) for e in train})
    words = {label: config.label_names.get(label, label.replace("_", " ")) for label in labels}
    instruction = label_instruction(config.instruction, list(words.values()))
    prompt = _prompter(fmt, instruction)
    room = max(len(token_ids(tokenizer, w + fmt.end_of_turn)) for w in words.values())
    frame = (len(token_ids(tokenizer, fmt.prefix)), len(token_ids(tokenizer, fmt.suffix)))
    limit = (config.max_length or DEFAULT_MAX_LENGTH) - room  # as the bundle cuts (fit_prompt)

    def asked(text: str) -> list[int]:
        return fit_prompt(token_ids(tokenizer, prompt(text)), *frame, limit)

    answers = {label: token_ids(tokenizer, w + fmt.end_of_turn) for label, w in words.items()}
    rows = [answered(asked(e.text), answers[str(e.label)]) for e in train]
    cut = sum(len(token_ids(tokenizer, prompt(e.text))) > limit for e in train)

    def evaluate(model: Any) -> dict[str, Any]:
        return {
            "validation": _accuracy(model, tokenizer, fmt, asked, validation, words, config),
            "test": _accuracy(model, tokenizer, fmt, asked, test, words, config) if test else None,
        }

    record = {
        "labels": labels,
        "label_words": words,
        "instruction": instruction,
        "truncated": {"train": cut},
    }
    return DecoderTask(rows, evaluate, record, skipped)


def _rank_task(config: TrainConfig, tokenizer: Any, fmt: ChatFormat) -> DecoderTask:
    """TALLRec: the user's liked and disliked titles and a candidate; the answer Yes or No.
    ``shots`` counts training rows in all (the encoder's rank rows, ``data.tasks.rank_rows``)."""
    from rec_edge.data.tasks import rank_rows

    instruction = config.instruction or RANK_INSTRUCTION
    _, splits = rank_rows(config)
    yes, no = RANK_ANSWERS
    question = _rank_question(tokenizer, fmt, instruction)
    rows = []
    for row in splits["train"]:
        asked = question(row)
        answer = token_ids(tokenizer, (yes if row.label == "yes" else no) + fmt.end_of_turn)
        rows.append((asked + answer, [-100] * len(asked) + answer))
    limit = config.validation_limit or 500

    def evaluate(model: Any) -> dict[str, Any]:
        def report(examples: list[PointwiseExample]) -> dict[str, Any]:
            if len(examples) > limit:  # a seeded sample: the rows are in time order
                examples = random.Random(config.seed).sample(examples, limit)
            scores = _yes_logits(model, [question(e) for e in examples], _answer_ids(tokenizer))
            return pair_report([int(e.label == "yes") for e in examples], np.array(scores))

        return {
            "validation": report(splits["validation"]),
            "test": report(splits["test"]) if config.rank_test else None,
        }

    record = {
        "labels": ["no", "yes"],  # as the encoder's rank runs name them
        "instruction": instruction,
        "rank": {"history": RANK_HISTORY, "candidate": RANK_CANDIDATE, "answers": [yes, no]},
    }
    return DecoderTask(rows, evaluate, record)


# each task's rows, validation and record (a generate run: Alpaca, chat rows or a mixture)
TASKS: dict[str, Callable[[TrainConfig, Any, ChatFormat], DecoderTask]] = {
    "classify": _classify_task,
    "rank": _rank_task,
    "generate": generate_task,
}


def rank_text_scores(run_dir: Path, rows: list[PointwiseExample]) -> np.ndarray:
    """The text logits (log P(yes) - log P(no)) of ``rows`` by the merged model of the decoder
    rank run in ``run_dir``, in PyTorch: the collaborative stage's text part (recommend.collab)."""
    from rec_edge.train.runs import load_run

    model, tokenizer = load_causal_lm(str(Path(run_dir) / "model"))
    instruction = load_run(run_dir).instruction or RANK_INSTRUCTION
    question = _rank_question(tokenizer, chat_format(tokenizer), instruction)
    scores = _yes_logits(model, [question(r) for r in rows], _answer_ids(tokenizer))
    return np.array(scores, dtype=np.float32)


def _rank_question(
    tokenizer: Any, fmt: ChatFormat, instruction: str
) -> Callable[[PointwiseExample], list[int]]:
    """A rank row's prompt ids: the user's titles and the candidate, up to the answer."""

    def question(row: PointwiseExample) -> list[int]:
        head = fmt.prefix + rank_history(row.preference.liked, row.preference.disliked, instruction)
        tail = rank_candidate(row.candidate) + fmt.suffix
        return token_ids(tokenizer, head) + token_ids(tokenizer, tail)

    return question


def _answer_ids(tokenizer: Any) -> tuple[int, int]:
    """The first tokens of the answers "Yes" and "No"."""
    yes, no = RANK_ANSWERS
    return token_ids(tokenizer, yes)[0], token_ids(tokenizer, no)[0]


def _yes_logits(model: Any, prompts: list[list[int]], answers: tuple[int, int]) -> list[float]:
    """log P(yes) - log P(no) at the answer's first token, one prompt a forward pass."""
    import torch

    scores = []
    with torch.no_grad():
        for ids in prompts:
            last = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
            scores.append(float(last[answers[0]] - last[answers[1]]))
    return scores


def _prompter(fmt: ChatFormat, instruction: str) -> Any:
    def prompt(text: str) -> str:
        return fmt.prefix + USER_TEMPLATE.format(instruction=instruction, text=text) + fmt.suffix

    return prompt


def _with_lora(model: Any, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules or TARGET_MODULES,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _learning_rate(config: TrainConfig) -> float:
    return config.learning_rate or DEFAULT_LEARNING_RATE


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4)


def _fit(model: Any, rows: list[Row], config: TrainConfig, bf16: bool) -> list[float]:
    """AdamW over the adapter for the step-based schedule; returns each step's loss."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    batch = min(config.batch_size, MAX_BATCH)
    per_epoch = math.ceil(len(rows) / batch)
    steps = config.max_steps or max(config.min_steps, math.ceil(config.epochs * per_epoch))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=_learning_rate(config), weight_decay=config.weight_decay
    )
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    rng = random.Random(config.seed)
    order: list[int] = []
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        if len(order) < batch:
            more = list(range(len(rows)))
            rng.shuffle(more)
            order += more
        chosen, order = order[:batch], order[batch:]
        ids, labels, mask = pad([rows[i] for i in chosen])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        losses.append(float(loss.detach()))
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    return losses


def _accuracy(
    model: Any,
    tokenizer: Any,
    fmt: ChatFormat,
    asked: Callable[[str], list[int]],
    examples: list[Example] | None,
    words: dict[str, str],
    config: TrainConfig,
) -> dict[str, Any]:
    """Accuracy and macro-F1: each text's label is the one whose words are the likeliest answer
    (texts whose label the run never trained on are left out)."""
    examples = (examples or [])[: config.validation_limit or 500]
    labels = list(words)
    index = {label: i for i, label in enumerate(labels)}
    known = [e for e in examples if str(e.label) in index]
    if not known:
        return {"accuracy": None, "macro_f1": None, "n": 0}
    answers = [token_ids(tokenizer, words[label] + fmt.end_of_turn) for label in labels]
    predicted = [likeliest(model, asked(e.text), answers) for e in known]
    truth = [index[str(e.label)] for e in known]
    return classification_report(truth, predicted, labels)
