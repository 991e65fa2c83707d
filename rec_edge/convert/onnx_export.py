"""Export a merged model to ONNX with optimum, then check it against PyTorch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.errors import ExportError
from rec_edge.modeling.heads import LabelHead, embed

log = logging.getLogger("rec_edge")


def export_onnx(
    model_dir: Path,
    out_dir: Path,
    task: str = "text-classification",
    opset: int | None = None,
    validate: bool = True,
) -> Path:
    """optimum's exporter (text-classification, feature-extraction for the description head, or
    text-generation-with-past for a decoder); with ``validate`` its own output validation too."""
    from optimum.exporters.onnx import main_export

    try:
        main_export(
            str(model_dir),
            out_dir,
            task=task,
            opset=opset,
            local_files_only=True,
            do_validation=validate,
            library_name="transformers",
        )
    except Exception as error:  # optimum raises many types; the message is what helps
        raise ExportError(f"ONNX export of {model_dir} failed: {error}") from error
    path = out_dir / "model.onnx"
    if not path.is_file():
        raise ExportError(f"optimum wrote no model.onnx into {out_dir}.")
    return path


def torch_logits(
    model_dir: Path,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 32,
    head: LabelHead | None = None,
) -> np.ndarray:
    """PyTorch's output rows for ``texts`` (in order), each distinct text once, batched by length
    so that a batch pads only to its own longest text; with ``head``, the description head's
    scores of the encoder's mean-pooled embeddings."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    unique = list(dict.fromkeys(texts))
    if head is not None:
        rows = head.logits(
            embed(AutoModel.from_pretrained(model_dir), tokenizer, unique, max_length)
        )
        where = {t: i for i, t in enumerate(unique)}
        return rows[[where[t] for t in texts]]
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
    rows = np.zeros((len(unique), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [unique[i] for i in chunk],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            rows[chunk] = model(**batch).logits.float().numpy()
    where = {t: i for i, t in enumerate(unique)}
    return rows[[where[t] for t in texts]]


def parity(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    diff = np.abs(reference - candidate)
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "label_agreement": float((reference.argmax(-1) == candidate.argmax(-1)).mean()),
        "n": int(len(reference)),
    }
