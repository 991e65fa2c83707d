"""The rank task's two-tower scorer: one encoder for the user's text and for the item's.

The encoder is a plain sequence classifier whose ``D + 1`` outputs are read as an embedding and a
bias, so export, quantization and the runtime handle it like any other bundle. The score of a
(user, item) pair is ``e_user . e_item + b_user + b_item``; P(yes) is its sigmoid. A user's history
is encoded once for all of their candidates, and item vectors can be cached.
"""

from __future__ import annotations

from typing import Any

from rec_edge.data.tasks import Split
from rec_edge.runtime.predictor import pair_scores

EMBEDDING_DIM = 128  # the head's width is EMBEDDING_DIM + 1 (the bias)


class PairDataset:
    """A rank split as rows of the user's and the item's token ids (padding is done per batch)."""

    def __init__(self, split: Split, tokenizer: Any, max_length: int):
        assert split.candidates is not None, "a rank split carries its candidates"
        user = tokenizer(split.texts, truncation=True, max_length=max_length)
        full = tokenizer(split.texts, truncation=False)["input_ids"]
        self.truncated = sum(len(ids) > max_length for ids in full)
        sides = {"item": split.candidates, "negative": split.negatives}
        encoded = {
            name: tokenizer(texts, truncation=True, max_length=max_length)
            for name, texts in sides.items()
            if texts is not None
        }
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in user]
        self.rows = []
        for i, label in enumerate(split.label_ids):
            row = {k: user[k][i] for k in keys}  # input_ids first: group_by_length reads it
            for name, enc in encoded.items():
                row.update({f"{name}_{k}": enc[k][i] for k in keys})
            row["labels"] = label
            self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def pair_collator(pad_id: int) -> Any:
    import torch

    def pad(rows: list[list[int]], value: int) -> Any:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)

    def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {}
        for key in features[0]:
            if key == "labels":
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.float32)
            else:
                batch[key] = pad([f[key] for f in features], pad_id if "input_ids" in key else 0)
        return batch

    return collate


def pair_model(encoder: Any, negative_weight: float = 1.0) -> Any:
    """The training wrapper: BCE on (user, item, label) plus (user, never-rated item, "no")."""
    import torch
    from torch import nn

    class PairScorer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def _encode(self, inputs: dict[str, Any], prefix: str) -> Any:
            names = ("input_ids", "attention_mask", "token_type_ids")
            return self.encoder(
                **{n: inputs[f"{prefix}{n}"] for n in names if f"{prefix}{n}" in inputs}
            ).logits

        def forward(self, labels: Any = None, **inputs: Any) -> dict[str, Any]:
            user = self._encode(inputs, "")
            scores = pair_scores(user, self._encode(inputs, "item_"))
            out: dict[str, Any] = {"logits": scores}
            if labels is not None:
                bce = nn.functional.binary_cross_entropy_with_logits
                loss = bce(scores, labels)
                if "negative_input_ids" in inputs:
                    negative = pair_scores(user, self._encode(inputs, "negative_"))
                    loss = loss + negative_weight * bce(negative, torch.zeros_like(negative))
                out["loss"] = loss
            return out

    return PairScorer()
