"""Recommendation baselines for the same evaluation: random, most popular, and collaborative
filtering from the `implicit` library (item-kNN with cosine similarity, ALS matrix factorization)."""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rec_edge.errors import MissingDependencyError
from rec_edge.metrics import ranking_metrics, roc_auc
from rec_edge.recommend.interactions import InteractionData
from rec_edge.recommend.protocols import PointwiseExample, RankingCase, item_counts


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
    """AUC of a random score, of the candidate's popularity among the training examples, and of
    rating biases: the candidate's share of "yes" in training (shrunk to the mean over
    ``prior`` examples) plus the share of liked titles in the user's stated history."""
    counts = Counter(e.candidate for e in train)
    yes = Counter(e.candidate for e in train if e.label == "yes")
    mean, prior = sum(yes.values()) / max(1, len(train)), 5

    def item_rate(e: PointwiseExample) -> float:
        return (yes[e.candidate] + mean * prior) / (counts[e.candidate] + prior)

    def liked_share(e: PointwiseExample) -> float:
        rated = len(e.preference.liked) + len(e.preference.disliked)
        return len(e.preference.liked) / rated if rated else mean

    labels = [int(e.label == "yes") for e in test]
    rng = random.Random(seed)
    return {
        "random": {"AUC": roc_auc(labels, [rng.random() for _ in test])},
        "most popular": {"AUC": roc_auc(labels, [counts[e.candidate] for e in test])},
        "item like rate": {"AUC": roc_auc(labels, [item_rate(e) for e in test])},
        "item like rate + user like share": {
            "AUC": roc_auc(labels, [item_rate(e) + liked_share(e) for e in test])
        },
    }


def _collaborative_models(seed: int) -> dict[str, Any]:
    try:
        from implicit.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        raise MissingDependencyError(
            "The collaborative baselines need the `implicit` library: pip install 'rec-edge[recsys]'"
        ) from None
    with warnings.catch_warnings():  # about BLAS threads: fit() runs under a 1-thread limit
        warnings.filterwarnings("ignore", "OpenBLAS is configured", RuntimeWarning)
        return {
            "item-kNN (implicit)": CosineRecommender(K=50, num_threads=1),
            "ALS (implicit)": AlternatingLeastSquares(
                factors=64, regularization=0.05, iterations=15, num_threads=1, random_state=seed
            ),
        }


class _Matrix:
    """Users x items, one for each (user, item) pair kept (implicit feedback)."""

    def __init__(self, data: InteractionData, pairs: Iterable[tuple[str, str]]):
        from scipy.sparse import coo_matrix

        self.users = {u: i for i, u in enumerate(sorted({r.user for r in data.interactions}))}
        self.items = {t: i for i, t in enumerate(sorted(data.titles))}
        kept = sorted({(self.users[u], self.items[i]) for u, i in pairs})
        rows, cols = zip(*kept, strict=True) if kept else ((), ())
        self.matrix = coo_matrix(
            (np.ones(len(kept), dtype=np.float32), (rows, cols)),
            shape=(len(self.users), len(self.items)),
        ).tocsr()

    def fit(self, model: Any) -> Any:
        from implicit.utils import ParameterWarning
        from threadpoolctl import threadpool_limits

        # implicit asks for one BLAS thread; its cosine model converts its own matrix and warns
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(self.matrix, show_progress=False)
        return model

    def scores(self, model: Any, user: str, items: Sequence[str]) -> np.ndarray:
        """The model's scores of ``items`` for ``user``, in the order given."""
        ids = np.array([self.items[i] for i in items])
        row = self.users[user]
        found, values = model.recommend(
            row, self.matrix[row : row + 1], N=len(ids), filter_already_liked_items=False, items=ids
        )
        by_id = dict(zip(found.tolist(), values.tolist(), strict=True))
        return np.array([by_id.get(int(i), -np.inf) for i in ids])


def collaborative_rank_baselines(
    data: InteractionData, cases: list[RankingCase], seed: int = 0
) -> dict[str, dict[str, float]]:
    """Item-kNN and ALS fitted on every interaction but the held-out targets, ranking each case."""
    held_out = {(c.preference.user, c.target) for c in cases}
    matrix = _Matrix(
        data, ((r.user, r.item) for r in data.interactions if (r.user, r.item) not in held_out)
    )
    targets = [c.target for c in cases]
    out = {}
    for name, model in _collaborative_models(seed).items():
        matrix.fit(model)
        ranked = []
        for case in cases:
            scores = matrix.scores(model, case.preference.user, case.candidates)
            ranked.append([case.candidates[i] for i in np.argsort(-scores, kind="stable")])
        out[name] = ranking_metrics(ranked, targets)
    return out


def collaborative_pointwise_baselines(
    data: InteractionData,
    train: list[PointwiseExample],
    test: list[PointwiseExample],
    seed: int = 0,
    threshold: float = 3.0,
) -> dict[str, dict[str, Any]]:
    """AUC of item-kNN and ALS fitted on the liked interactions up to the end of the training
    split (implicit feedback of liking), scoring each test (user, candidate) pair."""
    cutoff = max(e.timestamp for e in train)
    liked = (
        (r.user, r.item)
        for r in data.interactions
        if r.timestamp <= cutoff and r.rating > threshold
    )
    matrix = _Matrix(data, liked)
    labels = [int(e.label == "yes") for e in test]
    out: dict[str, dict[str, Any]] = {}
    for name, model in _collaborative_models(seed).items():
        matrix.fit(model)
        scores = [float(matrix.scores(model, e.preference.user, [e.item])[0]) for e in test]
        out[name] = {"AUC": roc_auc(labels, scores)}
    return out


def _count_features(
    rows: Sequence[PointwiseExample], rated: dict[str, float], liked: dict[str, float]
) -> np.ndarray:
    """Per row: the candidate's ratings and likes in the training rows, its smoothed like rate,
    the user's smoothed liked share, and the history's liked and disliked counts."""
    prior = sum(liked.values()) / max(1.0, sum(rated.values()))
    out = []
    for e in rows:
        n, yes = rated.get(e.candidate, 0.0), liked.get(e.candidate, 0.0)
        good, bad = len(e.preference.liked), len(e.preference.disliked)
        out.append([n, yes, (yes + 5 * prior) / (n + 5), (good + 1) / (good + bad + 2), good, bad])
    return np.array(out, dtype=np.float64).reshape(-1, 6)


def count_baselines(
    train: Sequence[PointwiseExample],
    fit: Sequence[PointwiseExample],
    test: Sequence[PointwiseExample],
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """What counting alone gives from the rows a bundle was given: the training rows ``train``
    (targets and history titles counted, as ``recommend.stack`` counts them) and the validation rows
    ``fit`` that its stack was fitted on. "two counts": the item's like rate plus the user's
    liked share; "GBDT on counts": scikit-learn's HistGradientBoostingClassifier on six count
    features, fitted on ``fit``."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        raise MissingDependencyError(
            "The count baselines need scikit-learn: pip install 'rec-edge[recsys]'"
        ) from None
    titles = sorted({e.candidate for e in [*train, *fit, *test]})
    rated_array, liked_array = item_counts(train, titles)
    rated = dict(zip(titles, rated_array.tolist(), strict=True))
    liked = dict(zip(titles, liked_array.tolist(), strict=True))
    x_fit, x_test = _count_features(fit, rated, liked), _count_features(test, rated, liked)
    labels = [int(e.label == "yes") for e in test]
    model = HistGradientBoostingClassifier(random_state=seed)
    model.fit(x_fit, [int(e.label == "yes") for e in fit])
    return {
        "two counts (same rows)": {"AUC": roc_auc(labels, (x_test[:, 2] + x_test[:, 3]).tolist())},
        "GBDT on counts (same rows)": {
            "AUC": roc_auc(labels, model.predict_proba(x_test)[:, 1].tolist())
        },
    }
