"""TORCH: the pieces of a language model's answer-only loss that every decoder task shares.

A training row is ``(ids, labels)``: the prompt's labels are -100, so only the answer's tokens
carry the loss. ``pad`` batches rows; ``answer_losses`` and ``likeliest`` score answers with a
tuned model (validation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Row = tuple[list[int], list[int]]


@dataclass
class DecoderTask:
    """What a task gives training: encoded (ids, labels) rows, how to evaluate the tuned model
    (validation and test reports), the run record's task fields, and the skipped input rows."""

    rows: list[Row]
    evaluate: Callable[[Any], dict[str, Any]]
    record: dict[str, Any]
    skipped: list[str] = field(default_factory=list)


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """The text's ids without the tokenizer's own BOS (the chat format has its own)."""
    return list(tokenizer.encode(text, add_special_tokens=False))


def answered(asked: list[int], answer: list[int]) -> Row:
    """(ids, labels) of a prompt and its answer: the loss on the answer alone."""
    return asked + answer, [-100] * len(asked) + answer


def pad(rows: list[Row], pad_id: int = 0) -> tuple[Any, Any, Any]:
    """Right-padded ids, labels (-100 on padding) and attention mask, as torch tensors."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (row_ids, row_labels) in enumerate(rows):
        ids[r, : len(row_ids)] = torch.tensor(row_ids)
        labels[r, : len(row_labels)] = torch.tensor(row_labels)
        mask[r, : len(row_ids)] = 1
    return ids, labels, mask


def answer_losses(model: Any, rows: list[Row]) -> tuple[Any, Any]:
    """(summed negative log-likelihood of each row's answer tokens, their count), torch."""
    import torch

    ids, targets, mask = pad(rows)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
    # the token at position t is predicted by the logits at t - 1
    picked = logp[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    counted = targets[:, 1:] != -100
    return -(picked * counted).sum(-1), counted.sum(-1)


def likeliest(model: Any, asked: list[int], answers: list[list[int]]) -> int:
    """The index of the answer with the highest log-likelihood after ``asked``."""
    losses, _ = answer_losses(model, [answered(asked, answer) for answer in answers])
    return int(losses.argmin())
