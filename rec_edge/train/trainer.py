"""`train` (TORCH): instruction-rendered examples -> LoRA (or full) fine-tuning with transformers'
Trainer.

The loop is transformers' Trainer (periodic evaluation, early stopping, best checkpoint, resume,
seeded determinism, gradient accumulation, torchrun/accelerate for several GPUs). The schedule is
counted in optimizer steps with a floor (``TrainConfig.resolved_steps``), so that 16 examples get
as many updates as they need; ``shots=0`` trains nothing and keeps the zero-shot head.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.config import TrainConfig, config_to_dict
from rec_edge.data.tasks import ClassificationData, Split, build_classification, run_name
from rec_edge.data.templates import RAW_TEMPLATES
from rec_edge.errors import ConfigError
from rec_edge.metrics import pair_report, selection_report, true_log_probs
from rec_edge.modeling.heads import HEAD_FILE, LabelHead, description_classifier, initial_head
from rec_edge.models import default_max_length, is_decoder, resolve_model
from rec_edge.recommend.pairs import (
    EMBEDDING_DIM,
    PairDataset,
    pair_collator,
    pair_model,
)
from rec_edge.train.precision import Precision, bf16_hardware, resolve_precision
from rec_edge.train.runs import (
    RUN_FILE,
    TrainResult,
    finish_run_dir,
    prepare_run_dir,
    run_inputs,
)
from rec_edge.versions import machine, versions


class _Encoded:
    """A tokenized split as a torch-style map dataset of dicts (padding is done per batch)."""

    def __init__(self, split: Split, tokenizer: Any, max_length: int):
        enc = tokenizer(split.texts, truncation=True, max_length=max_length)
        full = tokenizer(split.texts, truncation=False)["input_ids"]
        self.truncated = sum(len(ids) > max_length for ids in full)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        self.rows = [
            {**{k: enc[k][i] for k in keys}, "labels": label}
            for i, label in enumerate(split.label_ids)
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _log_callback(path: Path) -> Any:
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if state.is_world_process_zero and logs:
                with path.open("a", encoding="utf-8") as f:
                    f.write(
                        json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n"
                    )

    return JsonlLog()


def _metrics(prediction: Any, labels: list[str], rank: bool) -> dict[str, Any]:
    if rank:  # predictions: one score per (user, item) pair; labels: 1 = yes
        return pair_report(prediction.label_ids, prediction.predictions)
    return selection_report(prediction.predictions, prediction.label_ids, labels)


def _report(trainer: Any, dataset: Any, labels: list[str], rank: bool) -> dict[str, Any]:
    return _metrics(trainer.predict(dataset), labels, rank)


def _last_checkpoint(checkpoints: Path) -> str | None:
    """The newest complete checkpoint; one cut off while being written (a kill during the save)
    has no trainer_state.json yet and is removed, so that resuming starts from the one before."""
    found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    while found and not (found[-1] / "trainer_state.json").is_file():
        shutil.rmtree(found.pop())
    return str(found[-1]) if found else None


@dataclass
class _Model:
    """What the Trainer trains, and the pieces of it that the run keeps."""

    module: Any  # what the Trainer calls
    rank: bool
    head: LabelHead | None  # the description head's start (None: linear or two-tower)


def _default_max_length(model_path: str, tokenizer: Any) -> int:
    from transformers import AutoConfig

    return default_max_length(model_path, tokenizer, AutoConfig.from_pretrained(model_path))


def _tokenizer(model_path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{model_path}: rec-edge needs a fast tokenizer (tokenizer.json) for the torch-free runtime."
        )
    if tokenizer.pad_token is None:  # decoder models (SmolLM2) have none
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _build_model(
    config: TrainConfig, model_path: str, tokenizer: Any, data: ClassificationData, max_length: int
) -> _Model:
    """The encoder with its head (descriptions, a fresh label matrix, or the two towers' rows),
    dropout as configured, LoRA-wrapped for --method lora."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    from rec_edge.train.lora import wrap_lora

    rank = config.spec.ranks
    describe = not rank and config.head == "descriptions"
    labels = data.labels
    if describe:
        model = AutoModel.from_pretrained(model_path)
    else:  # rank: the head's outputs are an embedding and a bias (see recommend.pairs)
        width = EMBEDDING_DIM + 1 if rank else len(labels)
        names = [f"e{i}" for i in range(EMBEDDING_DIM)] + ["bias"] if rank else labels
        model = AutoModelForSequenceClassification.from_pretrained(
            model_path,
            num_labels=width,
            id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)},
        )
    if config.dropout is not None:  # on CPU, dropout's random masks cost as much as the matmuls
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = config.dropout
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    head = None
    if describe:  # the descriptions are embedded by the pretrained encoder, before LoRA
        descriptions = [data.templates.describe(label) for label in labels]
        head = initial_head(
            model,
            tokenizer,
            labels,
            descriptions,
            max_length,
            (data.train.texts, data.train.label_ids) if config.shots != 0 else ((), ()),
        )
    if config.method == "lora" and config.shots != 0:
        model = wrap_lora(
            model,
            config.lora_r,
            config.lora_alpha,
            config.lora_dropout,
            config.target_modules,
            features=describe,
            lora_layers=config.lora_layers,
        )
    if head is not None:
        return _Model(description_classifier(model, head, config.pair_loss), rank, head)
    return _Model(pair_model(model) if rank else model, rank, None)


def _schedule(config: TrainConfig, examples: int) -> dict[str, Any]:
    """TrainingArguments of the schedule: steps with a floor, warm-up as a share of them, the
    learning rate by data size, evaluation each epoch (or 5 times when the floor or --max-steps
    sets the length) on the same steps as the checkpoints."""
    steps = config.resolved_steps(examples)
    per_epoch = math.ceil(examples / (config.batch_size * config.gradient_accumulation_steps))
    by_epochs = config.max_steps is None and steps > config.min_steps
    every = max(1, per_epoch) if by_epochs else max(1, math.ceil(steps / 5))
    return {
        "max_steps": steps,
        "learning_rate": config.resolved_learning_rate(examples),
        "warmup_ratio": config.warmup_ratio,
        "eval_strategy": "steps",
        "save_strategy": "steps",
        "eval_steps": every,
        "save_steps": every,
        "logging_steps": max(1, steps // 25),
    }


def _trainer(
    config: TrainConfig,
    built: _Model,
    work: Path,
    sets: tuple[Any, Any],
    tokenizer: Any,
    labels: list[str],
    precision: Precision,
) -> Any:
    import torch
    from transformers import (
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    rank = built.rank

    def compute_metrics(prediction: Any) -> dict[str, float]:
        report = _metrics(prediction, labels, rank)
        keys = ("auc", "accuracy") if rank else ("accuracy", "macro_f1", "selection")
        return {k: report[k] for k in keys}

    args = TrainingArguments(
        output_dir=str(work / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(64, config.batch_size),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        weight_decay=config.weight_decay,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="auc" if rank else "selection",
        greater_is_better=True,
        logging_strategy="steps",
        seed=config.seed,
        data_seed=config.seed,
        full_determinism=True,
        group_by_length=True,  # fewer pad tokens per batch: faster on CPU
        report_to=[],
        save_safetensors=True,
        dataloader_num_workers=0,
        # the pair scorer and the description classifier take every column by keyword
        remove_unused_columns=not rank and built.head is None,
        use_cpu=not torch.cuda.is_available(),
        bf16=precision.used == "bf16",  # autocast; weights and optimizer state stay float32
        **_schedule(config, len(sets[0])),
    )
    callbacks: list[Any] = [_log_callback(work / "log.jsonl")]
    if config.early_stopping_patience:
        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)
        )
    return Trainer(
        model=built.module,
        args=args,
        train_dataset=sets[0],
        eval_dataset=sets[1],
        data_collator=pair_collator(tokenizer.pad_token_id)
        if rank
        else DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )


def _head_report(built: _Model, dataset: Any, tokenizer: Any, labels: list[str]) -> dict[str, Any]:
    """The untrained description classifier's report (zero-shot: no Trainer runs)."""
    import torch
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(tokenizer)
    rows, ids = [], []
    built.module.eval()
    with torch.inference_mode():
        for start in range(0, len(dataset), 64):
            batch = collate([dataset[i] for i in range(start, min(start + 64, len(dataset)))])
            ids.append(batch.pop("labels").numpy())
            rows.append(built.module(**batch)["logits"].float().numpy())
    return selection_report(np.concatenate(rows), np.concatenate(ids), labels)


def _save_model(
    config: TrainConfig, built: _Model, trained: Any, work: Path, tokenizer: Any
) -> Any:
    """The run's model/ (LoRA merged), adapter/ (LoRA), head.npz (description head); returns
    the saved transformers model (its config describes the run)."""
    best = trained.encoder if built.rank or built.head is not None else trained
    if built.head is not None:
        trained.trained_head().save(work / HEAD_FILE)
    if config.method == "lora" and config.shots != 0:
        best.save_pretrained(work / "adapter")
        best = best.merge_and_unload()
    best.save_pretrained(work / "model", safe_serialization=True)
    tokenizer.save_pretrained(work / "model")
    return best


@dataclass
class _Fitted:
    """What fitting gave: the trained module, the Trainer's state (None: zero-shot), the
    reports, the seconds and the checkpoint resumed from."""

    module: Any
    state: Any
    metrics: dict[str, Any]
    seconds: float
    resumed_from: str | None
    main_process: bool = True


def _validation_report(trainer: Any, dataset: Any, labels: list[str], rank: bool) -> dict[str, Any]:
    """The validation report; for classify also, a text each in the split's order (what the
    paired comparison of two runs on the same texts needs: train.compare), ``correct`` (0/1) and
    ``true_log_prob`` (the log-probability of its true label)."""
    prediction = trainer.predict(dataset)
    report = _metrics(prediction, labels, rank)
    if not rank:
        logits, truth = prediction.predictions, np.asarray(prediction.label_ids)
        hits = np.argmax(logits, axis=-1) == truth
        report["correct"] = "".join("1" if hit else "0" for hit in hits)
        report["true_log_prob"] = [round(float(x), 4) for x in true_log_probs(logits, truth)]
    return report


def _fit(
    config: TrainConfig,
    built: _Model,
    work: Path,
    sets: tuple[Any, Any, Any],
    tokenizer: Any,
    labels: list[str],
    precision: Precision,
) -> _Fitted:
    """The Trainer's loop and the final reports; zero-shot (``shots=0``): the reports alone."""
    train_set, validation_set, test_set = sets
    started = time.perf_counter()
    if config.shots == 0:  # zero-shot: the descriptions' head as it is
        metrics = {
            "validation": _head_report(built, validation_set, tokenizer, labels),
            "test": _head_report(built, test_set, tokenizer, labels) if test_set else None,
        }
        return _Fitted(built.module, None, metrics, time.perf_counter() - started, None)
    trainer = _trainer(
        config, built, work, (train_set, validation_set), tokenizer, labels, precision
    )
    resume_from = _last_checkpoint(work / "checkpoints") if config.resume else None
    # The Trainer prints its logs on stdout; send them to stderr so stdout stays ours (--json).
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train(resume_from_checkpoint=resume_from)
        seconds = time.perf_counter() - started
        metrics = {
            "validation": _validation_report(trainer, validation_set, labels, built.rank),
            "test": _report(trainer, test_set, labels, built.rank) if test_set else None,
        }
    return _Fitted(
        trainer.model,
        trainer.state,
        metrics,
        seconds,
        resume_from,
        trainer.is_world_process_zero(),
    )


def _head_info(built: _Model, work: Path) -> dict[str, Any]:
    if built.head is not None:
        return LabelHead.load(work / HEAD_FILE).to_dict()
    return {"kind": "two-tower", "dim": EMBEDDING_DIM} if built.rank else {"kind": "labels"}


def _run_record(
    config: TrainConfig,
    final: Path,
    data: ClassificationData,
    model_path: str,
    best: Any,
    head: dict[str, Any],
    fitted: _Fitted,
    truncated: dict[str, int],
    precision: Precision,
) -> dict[str, Any]:
    """run.json: what the export and a reader need to know of the run."""
    state = fitted.state
    best_checkpoint = Path(state.best_model_checkpoint or "").name or None if state else None
    return {
        "schema": 1,
        "task": config.task,
        "name": final.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_model": config.model or "minilm",
        "source_model_path": model_path,
        "model_type": best.config.model_type,
        "labels": data.labels,
        "head": head,
        "templates": data.templates.to_dict(),
        "max_length": config.max_length,
        "config": config_to_dict(config),
        "counts": data.counts,
        "skipped": data.skipped,
        "truncated": truncated,
        "resumed_from": fitted.resumed_from,
        "train_seconds": round(fitted.seconds, 1),
        "precision": precision.to_dict(),
        "steps": state.global_step if state else 0,
        "best_checkpoint": best_checkpoint,
        "epochs_run": state.epoch if state else 0,
        "metrics": fitted.metrics,
        "versions": versions(),
        "machine": machine(),
    }


def train(config: TrainConfig) -> TrainResult:
    if is_decoder(resolve_model(config.model)):  # a language model: the generative family
        from rec_edge.train.decoder import train_decoder

        return train_decoder(config)
    if config.spec.writes:
        raise ConfigError(
            "--task generate trains a language model that answers in words: pass --model smollm2 "
            "(or a causal language model's folder or hub id)"
        )
    data: ClassificationData = build_classification(config)
    raw = data.templates.templates == [RAW_TEMPLATES[config.task]]
    if config.resolved_compare_templates(len(data.train.texts), raw_by_default=raw):
        # two runs of this function, the better on validation kept (train.compare)
        from rec_edge.train.compare import train_compared

        return train_compared(replace(config, compare_templates=True), train)
    from transformers import set_seed

    model_path = resolve_model(config.model)
    final = Path(config.runs_dir) / run_name(config)
    work = prepare_run_dir(final, config.force, config.resume, run_inputs(config))

    precision = resolve_precision(config.precision, bf16_hardware())
    if precision.note:
        print(f"precision: {precision.note}", file=sys.stderr)
    set_seed(config.seed)  # before the head and the LoRA matrices are initialized
    tokenizer = _tokenizer(model_path)
    # from here on every step (and run.json) reads the resolved length
    max_length = config.max_length or _default_max_length(model_path, tokenizer)
    config = replace(
        config, max_length=max_length, method=config.resolved_method(len(data.train.texts))
    )
    built = _build_model(config, model_path, tokenizer, data, max_length)
    encode: Any = PairDataset if built.rank else _Encoded
    train_set = encode(data.train, tokenizer, max_length)
    validation_set = encode(data.validation, tokenizer, max_length)
    test_set = encode(data.test, tokenizer, max_length) if data.test else None
    sets = (train_set, validation_set, test_set)
    fitted = _fit(config, built, work, sets, tokenizer, data.labels, precision)
    metrics = fitted.metrics
    result = TrainResult(
        final,
        metrics,
        fitted.seconds,
        len(data.skipped),
        train_set.truncated,
        precision,
        max_length,
    )
    if not fitted.main_process:
        return result

    best = _save_model(config, built, fitted.module, work, tokenizer)
    truncated = {"train": train_set.truncated, "validation": validation_set.truncated}
    run = _run_record(
        config, final, data, model_path, best, _head_info(built, work), fitted, truncated, precision
    )
    (work / RUN_FILE).write_text(json.dumps(run, indent=2), encoding="utf-8")
    if not config.keep_checkpoints:
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
    finish_run_dir(work, final)
    if built.rank and config.collaborative:
        from rec_edge.recommend.collab import STAGE_METRICS, fit_collaborative

        stage = fit_collaborative(final)
        metrics["collaborative"] = {k: stage[k] for k in STAGE_METRICS}
    return result
