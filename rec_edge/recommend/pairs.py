"""The rank task's two-tower scorer: one encoder for the user's text and for the item's.

The encoder is a plain sequence classifier whose ``D + 1`` outputs are read as an embedding and a
bias, so export, quantization and the runtime handle it like any other bundle. The score of a
(user, item) pair is ``e_user . e_item + b_user + b_item``; P(yes) is its sigmoid. A user's history
is encoded once for all of their candidates, and item vectors can be cached.
"""

from __future__ import annotations

from typing import Any

from rec_edge.data.tasks import Split
from rec_edge.runtime.ranker import pair_scores

EMBEDDING_DIM = 128  # the head's width is EMBEDDING_DIM + 1 (the bias)


class PairDataset:
    """A rank split as rows of the user's and the item's token ids (padding is done per batch).

    Training rows also carry their negatives' token ids, the negatives' ids in a vocabulary of the
    split's negative titles, and the ids of those the user rated: the collator masks, for each
    user, the batch's negatives that user rated, so that every user is scored against every
    other negative of the batch at no extra encoder cost.
    """

    def __init__(self, split: Split, tokenizer: Any, max_length: int):
        assert split.candidates is not None, "a rank split carries its candidates"
        user = tokenizer(split.texts, truncation=True, max_length=max_length)
        full = tokenizer(split.texts, truncation=False)["input_ids"]
        self.truncated = sum(len(ids) > max_length for ids in full)
        item = tokenizer(split.candidates, truncation=True, max_length=max_length)
        negatives = split.negatives or []
        assert not negatives or split.rated is not None, "negatives come with the rated titles"
        per_text = len(negatives[0]) if negatives else 0
        flat = [t for texts in negatives for t in texts]
        negative = tokenizer(flat, truncation=True, max_length=max_length) if flat else None
        vocabulary = {title: i for i, title in enumerate(sorted(set(flat)))}
        rated_ids: dict[frozenset[str], frozenset[int]] = {}  # one set per user, shared by rows
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in user]
        self.rows = []
        for i, label in enumerate(split.label_ids):
            row: dict[str, Any] = {k: user[k][i] for k in keys}  # group_by_length: input_ids
            row.update({f"item_{k}": item[k][i] for k in keys})
            if negative is not None and split.rated is not None:
                span = slice(i * per_text, (i + 1) * per_text)
                row.update({f"negative_{k}": negative[k][span] for k in keys})
                row["negative_item"] = [vocabulary[t] for t in negatives[i]]
                rated = split.rated[i]
                if rated not in rated_ids:
                    rated_ids[rated] = frozenset(vocabulary[t] for t in rated if t in vocabulary)
                row["rated_item"] = rated_ids[rated]
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
            if key in ("negative_item", "rated_item"):  # read into negative_mask below
                continue
            rows = [f[key] for f in features]
            if key == "labels":
                batch[key] = torch.tensor(rows, dtype=torch.float32)
                continue
            if key.startswith("negative_"):  # [batch * negatives, length], grouped by text
                rows = [ids for per_text in rows for ids in per_text]
            batch[key] = pad(rows, pad_id if "input_ids" in key else 0)
        if "negative_item" in features[0]:  # [batch, batch * negatives]: False where rated
            items = [i for f in features for i in f["negative_item"]]
            batch["negative_mask"] = torch.tensor(
                [[i not in f["rated_item"] for i in items] for f in features]
            )
        return batch

    return collate


def pair_model(encoder: Any, negative_weight: float = 1.0) -> Any:
    """The training wrapper: BCE on (user, item, label), plus ``negative_weight`` times the mean
    BCE of (user, never-rated item, "no") over every negative of the batch the user never rated
    (``negative_mask``): ``negatives`` per example buy ``batch * negatives`` per user."""
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

        def forward(
            self, labels: Any = None, negative_mask: Any = None, **inputs: Any
        ) -> dict[str, Any]:
            user = self._encode(inputs, "")
            scores = pair_scores(user, self._encode(inputs, "item_"))
            out: dict[str, Any] = {"logits": scores}
            if labels is not None:
                bce = nn.functional.binary_cross_entropy_with_logits
                loss = bce(scores, labels)
                if negative_mask is not None:  # one encoder run for all of the batch's negatives
                    negatives = self._encode(inputs, "negative_")
                    negative = pair_scores(user[:, None, :], negatives[None, :, :])  # [batch, N]
                    each = bce(negative, torch.zeros_like(negative), reduction="none")
                    mask = negative_mask.to(each.dtype)
                    per_user = (each * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
                    loss = loss + negative_weight * per_user.mean()
                out["loss"] = loss
            return out

    return PairScorer()
