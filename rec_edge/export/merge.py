"""The model to export: the run's merged model, or its LoRA adapter merged into the base weights."""

from __future__ import annotations

from pathlib import Path

from rec_edge.errors import RunError
from rec_edge.train.runs import RunRecord


def merge_adapter(
    adapter_dir: Path, base: str, labels: list[str], out: Path, encoder_only: bool = False
) -> Path:
    """Load the base model with the run's head shape (``encoder_only``: the bare encoder of a
    description run, whose head is in head.npz), apply the adapter, merge, save to ``out``."""
    from peft import PeftModel
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    try:
        model = (
            AutoModel.from_pretrained(base)
            if encoder_only
            else AutoModelForSequenceClassification.from_pretrained(
                base,
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)},
            )
        )
        tokenizer = AutoTokenizer.from_pretrained(base)
    except OSError as error:
        raise RunError(
            f"The run's base model {base} cannot be loaded to merge its adapter ({error})."
        ) from None
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def model_to_export(run_dir: Path, run: RunRecord, work: Path) -> Path:
    merged = run_dir / "model"
    if (merged / "config.json").is_file():
        return merged
    encoder_only = run.head.get("kind") == "descriptions"
    return merge_adapter(
        run_dir / "adapter", run.source_model_path, run.labels, work / "merged", encoder_only
    )
