"""The label-description head (TORCH): texts and label descriptions in one embedding space.

A text's score for label j is ``scale * cos(mean_pool(encoder(text)), row_j) + bias_j``. Each row
starts as the encoder's own embedding of the label's description ("This is about card arrival."),
so that the untrained model already ranks the labels (zero-shot), a few examples move rows and
encoder from a good start instead of a random matrix, and a label added after training is one
more description to embed (``extend_head``). Mean pooling is what sentence encoders such as
all-MiniLM-L6-v2 were trained with; BERT's pooler on [CLS] was not trained there at all.

The exported graph computes the same head (``convert.head_graph``): the runtime is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HEAD_FILE = "head.npz"
HEAD_KIND = "descriptions"
# Cosine similarities lie in [-1, 1]; the scale turns them into logits that softmax can make
# confident (NormFace, CosFace use 16 to 64). Fixed: a learned scale only grows on few examples.
SCALE = 20.0
MEAN_EPS = 1e-9  # sentence-transformers' clamp of the token count
NORM_EPS = 1e-12  # torch.nn.functional.normalize's
PROTOTYPE_EXAMPLES = 64  # per label, for the rows' start (modeling.heads.initial_head)


@dataclass
class LabelHead:
    """Unit rows (one per label, in label order), biases and the fixed scale."""

    labels: list[str]
    descriptions: list[str]
    rows: np.ndarray  # float32 [labels, hidden], unit length
    bias: np.ndarray  # float32 [labels]
    scale: float = SCALE

    def save(self, path: Path) -> None:
        np.savez(
            path,
            labels=np.array(self.labels),
            descriptions=np.array(self.descriptions),
            rows=self.rows.astype(np.float32),
            bias=self.bias.astype(np.float32),
            scale=np.float32(self.scale),
        )

    @classmethod
    def load(cls, path: Path) -> LabelHead:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                data["labels"].tolist(),
                data["descriptions"].tolist(),
                data["rows"],
                data["bias"],
                float(data["scale"]),
            )

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Unit text embeddings [n, hidden] -> scores [n, labels] (what the graph computes)."""
        return (self.scale * embeddings @ self.rows.T + self.bias).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """What run.json and the manifest say of the head (the arrays stay in the file)."""
        return {
            "kind": HEAD_KIND,
            "file": HEAD_FILE,
            "pooling": "mean",
            "scale": self.scale,
            "descriptions": dict(zip(self.labels, self.descriptions, strict=True)),
        }


def mean_pool(hidden: Any, mask: Any) -> Any:
    """[batch, seq, hidden], [batch, seq] -> unit vectors [batch, hidden] (torch)."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=MEAN_EPS)
    return torch.nn.functional.normalize(mean, dim=-1, eps=NORM_EPS)


def embed(
    encoder: Any, tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int = 32
) -> np.ndarray:
    """Unit embeddings of ``texts`` (float32 [n, hidden]) by a base encoder (AutoModel)."""
    import torch

    was_training = encoder.training
    encoder.eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]),
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            hidden = encoder(**batch).last_hidden_state
            rows.append(mean_pool(hidden, batch["attention_mask"]).float().numpy())
    encoder.train(was_training)
    width = encoder.config.hidden_size
    return np.concatenate(rows) if rows else np.zeros((0, width), np.float32)


def initial_head(
    encoder: Any,
    tokenizer: Any,
    labels: list[str],
    descriptions: list[str],
    max_length: int,
    examples: tuple[Sequence[str], Sequence[int]] = ((), ()),
) -> LabelHead:
    """The head training starts from, biases 0. Rows: the encoder's embedding of each label's
    description (zero-shot), plus the mean embedding of the label's training ``examples`` (texts,
    label ids; at most PROTOTYPE_EXAMPLES a label), made unit length: where the label's texts
    lie, pulled toward what its description says (prototypical networks, with a prior)."""
    rows = embed(encoder, tokenizer, descriptions, max_length)
    texts, ids = examples
    chosen: dict[int, list[str]] = {}
    for text, label in zip(texts, ids, strict=True):
        if len(chosen.setdefault(label, [])) < PROTOTYPE_EXAMPLES:
            chosen[label].append(text)
    for label, group in chosen.items():
        rows[label] += embed(encoder, tokenizer, group, max_length).mean(0)
    rows /= np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), NORM_EPS)
    return LabelHead(labels, descriptions, rows, np.zeros(len(labels), np.float32))


def extend_head(
    head: LabelHead,
    encoder: Any,
    tokenizer: Any,
    new: dict[str, str],
    max_length: int,
) -> LabelHead:
    """The head with one more row per ``new`` label (name -> description), embedded by the
    trained encoder; each new bias is the mean of the trained ones."""
    names, texts = list(new), list(new.values())
    rows = embed(encoder, tokenizer, texts, max_length)
    bias = np.full(len(names), float(head.bias.mean()) if len(head.bias) else 0.0, np.float32)
    return LabelHead(
        head.labels + names,
        head.descriptions + texts,
        np.concatenate([head.rows, rows]),
        np.concatenate([head.bias, bias]),
        head.scale,
    )


def pair_loss(text: Any, labels: Any) -> Any:
    """SetFit's contrastive objective on the batch's own pairs: the mean squared gap between
    the cosine of two texts and 1 (same label) or 0 (different labels), over every pair i < j.
    A batch of 32 gives 496 pairs at no extra encoder pass."""
    import torch

    same = (labels[:, None] == labels[None, :]).to(text.dtype)
    upper = torch.triu(torch.ones_like(same, dtype=torch.bool), diagonal=1)
    gaps = (text @ text.T - same)[upper]
    return (gaps**2).mean() if gaps.numel() else text.sum() * 0.0


def description_classifier(encoder: Any, head: LabelHead, pair_weight: float = 0.0) -> Any:
    """The training module: encoder + trainable rows and biases; cross-entropy on labels, plus
    ``pair_weight`` times the pair loss on the batch's texts (``pair_loss``)."""
    import torch
    from torch import nn

    class DescriptionClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.rows = nn.Parameter(torch.tensor(head.rows, dtype=torch.float32))
            self.bias = nn.Parameter(torch.tensor(head.bias, dtype=torch.float32))
            self.scale = head.scale

        def forward(
            self,
            input_ids: Any,
            attention_mask: Any,
            token_type_ids: Any = None,
            labels: Any = None,
        ) -> dict[str, Any]:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            hidden = self.encoder(**inputs).last_hidden_state
            text = mean_pool(hidden, attention_mask)  # [batch, hidden]
            rows = nn.functional.normalize(self.rows, dim=-1, eps=NORM_EPS)  # [labels, hidden]
            logits = self.scale * text @ rows.T + self.bias  # [batch, labels]
            out: dict[str, Any] = {"logits": logits}
            if labels is not None:
                out["loss"] = nn.functional.cross_entropy(logits, labels)
                if pair_weight and self.training:
                    out["loss"] = out["loss"] + pair_weight * pair_loss(text, labels)
            return out

        def trained_head(self) -> LabelHead:
            rows = nn.functional.normalize(self.rows.detach(), dim=-1, eps=NORM_EPS)
            return LabelHead(
                head.labels,
                head.descriptions,
                rows.float().numpy(),
                self.bias.detach().float().numpy(),
                self.scale,
            )

    return DescriptionClassifier()
