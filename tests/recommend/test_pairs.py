"""The two-tower training batch: every user scored against the batch's negatives it never rated."""

from __future__ import annotations

import math

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rec_edge.data.tasks import Split
from rec_edge.recommend.pairs import EMBEDDING_DIM, PairDataset, pair_collator, pair_model
from rec_edge.runtime.ranker import pair_scores


def test_batch_negatives_skip_titles_the_user_rated(tiny_model) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    # user a rated "C" (b's negative); user b rated "A" (a's negative) and nothing else drawn
    split = Split(
        texts=["user a likes A1", "user b likes B1"],
        label_ids=[1, 0],
        source="test",
        candidates=["A1", "B1"],
        negatives=[("A", "X"), ("C", "A")],
        rated=[frozenset({"A1", "C"}), frozenset({"B1", "A"})],
    )
    dataset = PairDataset(split, tokenizer, max_length=32)
    batch = pair_collator(tokenizer.pad_token_id)([dataset[0], dataset[1]])
    assert batch["negative_input_ids"].shape[0] == 4  # [batch * negatives, length]
    # columns: a's A, a's X, b's C, b's A
    assert batch["negative_mask"].tolist() == [
        [True, True, False, True],
        [False, True, True, False],
    ]
    assert not {"negative_item", "rated_item"} & set(batch)  # the model gets tensors only

    torch.manual_seed(0)
    encoder = AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=EMBEDDING_DIM + 1
    ).eval()
    loss = pair_model(encoder)(**batch)["loss"]

    def encode(prefix: str) -> torch.Tensor:
        names = ("input_ids", "attention_mask", "token_type_ids")
        return encoder(**{n: batch[prefix + n] for n in names if prefix + n in batch}).logits

    with torch.no_grad():
        user, item, negative = encode(""), encode("item_"), encode("negative_")
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        expected = bce(pair_scores(user, item), batch["labels"]).item()
        per_user = []
        for u, columns in ((0, [0, 1, 3]), (1, [1, 2])):  # by hand, from the titles above
            s = pair_scores(user[u][None, :], negative[columns])
            per_user.append(sum(math.log1p(math.exp(v)) for v in s.tolist()) / len(columns))
    assert abs(loss.item() - (expected + sum(per_user) / 2)) < 1e-5
