"""`train`: instruction-rendered examples -> LoRA (or full) fine-tuning with transformers' Trainer.

The loop is transformers' Trainer (evaluation each epoch, early stopping, best checkpoint,
resume, seeded determinism, gradient accumulation, torchrun/accelerate for several GPUs).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.config import TrainConfig, config_to_dict
from rec_edge.data.tasks import ClassificationData, Split, build_classification, run_name
from rec_edge.metrics import classification_report, pair_report
from rec_edge.models import resolve_model
from rec_edge.train.pairs import (
    EMBEDDING_DIM,
    PairDataset,
    pair_collator,
    pair_model,
)
from rec_edge.train.runs import RUN_FILE, finish_run_dir, prepare_run_dir
from rec_edge.versions import machine, versions


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]  # {"validation": report, "test": report or None}
    train_seconds: float
    skipped: int
    truncated: int


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
    return classification_report(
        prediction.label_ids, np.argmax(prediction.predictions, axis=-1), labels
    )


def _report(trainer: Any, dataset: Any, labels: list[str], rank: bool) -> dict[str, Any]:
    return _metrics(trainer.predict(dataset), labels, rank)


def _last_checkpoint(checkpoints: Path) -> str | None:
    """The newest complete checkpoint; one cut off while being written (a kill during the save)
    has no trainer_state.json yet and is removed, so that resuming starts from the one before."""
    found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    while found and not (found[-1] / "trainer_state.json").is_file():
        shutil.rmtree(found.pop())
    return str(found[-1]) if found else None


def train(config: TrainConfig) -> TrainResult:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from rec_edge.train.lora import wrap_lora

    data: ClassificationData = build_classification(config)
    model_path = resolve_model(config.model)
    final = Path(config.runs_dir) / run_name(config)
    work = prepare_run_dir(final, config.force, config.resume)

    set_seed(config.seed)  # before the head and the LoRA matrices are initialized
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{model_path}: rec-edge needs a fast tokenizer (tokenizer.json) for the torch-free runtime."
        )
    if tokenizer.pad_token is None:  # decoder models (SmolLM2) have none
        tokenizer.pad_token = tokenizer.eos_token
    labels = data.labels
    rank = config.task == "rank"
    # rank: the head's outputs are an embedding and a bias (see train.pairs), not label scores
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
    if config.method == "lora":
        model = wrap_lora(
            model, config.lora_r, config.lora_alpha, config.lora_dropout, config.target_modules
        )

    encode: Any = PairDataset if rank else _Encoded
    train_set = encode(data.train, tokenizer, config.max_length)
    validation_set = encode(data.validation, tokenizer, config.max_length)
    test_set = encode(data.test, tokenizer, config.max_length) if data.test else None

    def compute_metrics(prediction: Any) -> dict[str, float]:
        report = _metrics(prediction, labels, rank)
        keys = ("auc", "accuracy") if rank else ("accuracy", "macro_f1")
        return {k: report[k] for k in keys}

    steps_per_epoch = max(
        1, len(train_set) // (config.batch_size * config.gradient_accumulation_steps)
    )
    args = TrainingArguments(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(64, config.batch_size),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.resolved_learning_rate,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="auc" if rank else "accuracy",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 5),
        seed=config.seed,
        data_seed=config.seed,
        full_determinism=True,
        group_by_length=True,  # fewer pad tokens per batch: faster on CPU
        report_to=[],
        save_safetensors=True,
        dataloader_num_workers=0,
        remove_unused_columns=not rank,  # the pair scorer takes every column by keyword
        use_cpu=not torch.cuda.is_available(),
    )
    callbacks: list[Any] = [_log_callback(work / "log.jsonl")]
    if config.early_stopping_patience:
        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)
        )
    trainer = Trainer(
        model=pair_model(model) if rank else model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set,
        data_collator=pair_collator(tokenizer.pad_token_id)
        if rank
        else DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    resume_from = _last_checkpoint(work / "checkpoints") if config.resume else None
    started = time.perf_counter()
    # The Trainer prints its logs on stdout; send them to stderr so stdout stays ours (--json).
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train(resume_from_checkpoint=resume_from)
        train_seconds = time.perf_counter() - started
        metrics = {
            "validation": _report(trainer, validation_set, labels, rank),
            "test": _report(trainer, test_set, labels, rank) if test_set else None,
        }
    if trainer.is_world_process_zero():
        best = trainer.model.encoder if rank else trainer.model
        if config.method == "lora":
            best.save_pretrained(work / "adapter")
            best = best.merge_and_unload()
        best.save_pretrained(work / "model", safe_serialization=True)
        tokenizer.save_pretrained(work / "model")
        run = {
            "schema": 1,
            "task": config.task,
            "name": final.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_model": config.model or "minilm",
            "source_model_path": model_path,
            "model_type": best.config.model_type,
            "labels": labels,
            "head": {"kind": "two-tower", "dim": EMBEDDING_DIM} if rank else {"kind": "labels"},
            "templates": data.templates.to_dict(),
            "max_length": config.max_length,
            "config": config_to_dict(config),
            "counts": data.counts,
            "skipped": data.skipped,
            "truncated": {"train": train_set.truncated, "validation": validation_set.truncated},
            "resumed_from": resume_from,
            "train_seconds": round(train_seconds, 1),
            "best_checkpoint": Path(trainer.state.best_model_checkpoint or "").name or None,
            "epochs_run": trainer.state.epoch,
            "metrics": metrics,
            "versions": versions(),
            "machine": machine(),
        }
        (work / RUN_FILE).write_text(json.dumps(run, indent=2), encoding="utf-8")
        if not config.keep_checkpoints:
            shutil.rmtree(work / "checkpoints", ignore_errors=True)
        finish_run_dir(work, final)
        if rank and config.collaborative:
            from rec_edge.train.collab import fit_collaborative

            stage = fit_collaborative(final)
            metrics["collaborative"] = {
                k: stage[k] for k in ("validation_auc", "validation_auc_text_only", "best_epoch")
            }
    return TrainResult(final, metrics, train_seconds, len(data.skipped), train_set.truncated)
