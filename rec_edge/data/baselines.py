"""Non-learned recommendation baselines for the same evaluation: random and most popular."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from rec_edge.data.interactions import InteractionData
from rec_edge.data.recommend import PointwiseExample, RankingCase
from rec_edge.metrics import ranking_metrics, roc_auc


def popularity(data: InteractionData, exclude: set[tuple[str, str]] | None = None) -> Counter[str]:
    """Interactions per item, leaving out (user, item) pairs held out for evaluation."""
    held_out = exclude or set()
    return Counter(r.item for r in data.interactions if (r.user, r.item) not in held_out)


def rank_baselines(
    data: InteractionData, cases: list[RankingCase], seed: int = 0
) -> dict[str, dict[str, float]]:
    counts = popularity(data, {(c.preference.user, c.target) for c in cases})
    rng = random.Random(seed)
    ranked_random = [rng.sample(c.candidates, len(c.candidates)) for c in cases]
    # ties broken by the shuffled candidate order, so a tie never favours the target
    ranked_popular = [sorted(c.candidates, key=lambda item: -counts[item]) for c in cases]
    targets = [c.target for c in cases]
    return {
        "random": ranking_metrics(ranked_random, targets),
        "most popular": ranking_metrics(ranked_popular, targets),
    }


def pointwise_baselines(
    data: InteractionData,
    train: list[PointwiseExample],
    test: list[PointwiseExample],
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """AUC of a random score and of the candidate's popularity among the training examples."""
    counts = Counter(e.candidate for e in train)
    labels = [int(e.label == "yes") for e in test]
    rng = random.Random(seed)
    return {
        "random": {"AUC": roc_auc(labels, [rng.random() for _ in test])},
        "most popular": {"AUC": roc_auc(labels, [counts[e.candidate] for e in test])},
    }
