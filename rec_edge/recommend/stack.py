"""Training side (numpy): the rank run's stack, fitted on validation rows after the tables, so that
the bundle is never worse than its parts (formulas in ``rec_edge.recommend.tables``).

The parts are the text score, the tables' like terms, two counts a recommender always has (how
often the training rows rated and liked each title, targets and history titles once per user; and
the user's liked share of the history in the request), and the candidate's similarity to the
liked history titles in the model's item space. Each subset of them is a candidate: a logistic
regression on its features, judged by its AUC in 5-fold cross-validation on the validation rows;
the smallest subset within ``TOLERANCE`` of the best is refitted on all of them. The like stack
starts from the two counts (``COUNTS``: the baseline a recommender always has, model-free, which a
few hundred validation rows cannot rank against the model's parts): among the subsets that hold
both, the smallest as good as the best of them is kept, so a model part joins the counts only if
it adds more than ``TOLERANCE`` and more than the noise (one standard error of the difference of
the two out-of-fold AUCs, paired: DeLong's, so a few hundred rows take nothing a chance could give
and a few thousand take what they can see), as long as that choice is as good as every part
alone, by the same measure (else the plain choice above). Every part alone is a candidate, so on
validation the chosen stack is as good as each part, within ``TOLERANCE`` (with few validation
rows a noise score would otherwise join by chance). The exposure (does the
user rate the title at all) is stacked the same way, on the validation pairs against titles the
user never rated; and a title outside the catalog gets weights of its own for the text, the
user's share and the similarity (new items: no counts, no tables), and an exposure of its own
from the similarity and the word similarity to the liked history texts, chosen the same way on
the same exposure pairs as if every title were new, and guarded: unless the chosen parts beat
chance (AUC 0.5) by two standard errors of a score that knows nothing, every new title gets the
same exposure (the intercept), and new titles are ordered by their like score alone.

Two more like parts come from the counts (schema 1.5): the user's lenience (the history's like
residuals against the titles' like rates) and the co-liked history, whose co-like factors are the
leading singular vectors of the users x titles matrix of like residuals (each title's column of unit
length), found by a randomized SVD on its nonzero entries alone (numpy; ``colike_factors``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np

from rec_edge.metrics import auc_difference_se, roc_auc
from rec_edge.recommend.protocols import PointwiseExample, item_counts, user_ratings
from rec_edge.recommend.tables import (
    EXPOSURE_FEATURES,
    LIKE_FEATURES,
    NEW_EXPOSURE_FEATURES,
    NEW_ITEM_COLUMNS,
    NEW_ITEM_FEATURES,
    CollaborativeTables,
    Stack,
    Words,
    exposure_features,
    history_similarity,
    like_features,
    new_exposure_features,
)

FOLDS = 5
L2 = 1e-2  # on standardized features, per validation row
TOLERANCE = 0.002  # of cross-validated AUC: a part joins the stack only if it adds more
CHANCE_SE = 2.0  # standard errors above chance that a guarded stack must be to beat the constant
# the like stack's base: the model's parts join it, when the choice stays as good as each part
COUNTS = ("user liked share", "item like rate")
COLIKE_DIM = 32  # co-like factors per title


def logistic(features: np.ndarray, labels: np.ndarray, l2: float = L2) -> np.ndarray:
    """Weights (the last one the intercept) of an L2-regularized logistic regression, by Newton's
    method on standardized features; the returned weights apply to the raw features."""
    mean, scale = features.mean(0), features.std(0)
    scale[scale < 1e-12] = 1.0
    x = np.column_stack([(features - mean) / scale, np.ones(len(features))])
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2 * len(x))
    penalty[-1] = 0.0  # the intercept is free
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - labels) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = w[:-1] / scale
    return np.append(weights, w[-1] - weights @ mean)


def _out_of_fold(features: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """The out-of-fold logits of a logistic regression (FOLDS folds, seeded); the features' sum
    where a fold lacks one of the classes to learn from."""
    folds = np.random.default_rng(seed).permutation(len(labels)) % FOLDS
    out = np.zeros(len(labels))
    for fold in range(FOLDS):
        held = folds == fold
        if labels[~held].min() == labels[~held].max():
            return features.sum(1)
        w = logistic(features[~held], labels[~held])
        out[held] = features[held] @ w[:-1] + w[-1]
    return out


def chance_margin(labels: np.ndarray) -> float:
    """``CHANCE_SE`` standard errors of the AUC of a score that knows nothing, on these labels
    (Hanley and McNeil's null variance, (n1 + n0 + 1) / (12 n1 n0))."""
    n1 = float(labels.sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return 0.5
    return CHANCE_SE * float(np.sqrt((n1 + n0 + 1) / (12 * n1 * n0)))


def choose(
    features: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    seed: int,
    constant: bool = False,
    base: Sequence[str] = (),
) -> tuple[np.ndarray, dict[str, Any]]:
    """The weights (zero for features left out) of the smallest subset of ``names`` within
    ``TOLERANCE`` of the best cross-validated AUC, refitted on every row; and the AUC of each
    subset. With ``base``, the search is among the subsets holding all of ``base`` (the smallest
    as good as the best of those: behind it by at most ``TOLERANCE`` or one standard error of the
    paired difference, whichever is larger), kept if it is as good as every part alone. With ``constant``, the empty subset (the intercept alone) is chosen instead unless that
    subset beats chance (0.5) by ``chance_margin``."""
    logits = {
        subset: _out_of_fold(features[:, subset], labels, seed)
        for size in range(1, len(names) + 1)
        for subset in combinations(range(len(names)), size)
    }
    scores = {subset: roc_auc(labels.tolist(), x.tolist()) for subset, x in logits.items()}
    top = max(scores.values())
    near = [s for s in scores if scores[s] >= top - TOLERANCE]
    best: tuple[int, ...] = min(near, key=lambda s: (len(s), -scores[s]))
    record: dict[str, Any] = {}
    if base:

        def matches(subset: tuple[int, ...], better: tuple[int, ...]) -> bool:
            """``subset`` is as good as ``better``: behind it by at most TOLERANCE or one
            standard error of the difference, whichever is larger."""
            noise = auc_difference_se(labels, logits[better], logits[subset])
            return scores[subset] >= scores[better] - max(TOLERANCE, noise)

        held = {names.index(b) for b in base}
        holding = [s for s in scores if held <= set(s)]
        top_held = max(holding, key=scores.__getitem__)
        near = [s for s in holding if matches(s, top_held)]
        from_base = min(near, key=lambda s: (len(s), -scores[s]))
        alone = max(((i,) for i in range(len(names))), key=scores.__getitem__)
        record["base"] = list(base)
        record["base_kept"] = matches(from_base, alone)
        if record["base_kept"]:
            best = from_base
    if constant:
        record["chance_margin"] = round(chance_margin(labels), 5)
        if scores[best] < 0.5 + record["chance_margin"]:
            best = ()
    fitted = logistic(features[:, list(best)], labels)
    weights = np.zeros(len(names) + 1)
    weights[list(best)], weights[-1] = fitted[:-1], fitted[-1]
    return weights, {
        "chosen": [names[i] for i in best],
        "weights": dict(zip([*names, "intercept"], weights.round(6).tolist(), strict=True)),
        "validation_auc": {" + ".join(names[i] for i in s): round(a, 5) for s, a in scores.items()},
        **record,
    }


def fit_stack(
    tables: CollaborativeTables,
    train: Sequence[PointwiseExample],
    validation: Sequence[PointwiseExample],
    text_validation: np.ndarray,
    draw_unrated: Callable[[str], str],
    titles: dict[str, str],
    item_rows: dict[str, np.ndarray] | None,
    seed: int = 0,
    negatives: int = 4,
) -> tuple[CollaborativeTables, dict[str, Any]]:
    """``tables`` with their stack: the counts of ``train`` and the weights chosen on
    ``validation`` (``text_validation``: the text logits of its rows; ``draw_unrated(user)``: an
    item id the user never rated, ``titles``: item id -> title; ``item_rows``: title -> the
    model's output row, for ``history_similarity``; None for a model without an item space, a
    decoder's: the similarity is 0 and weighs nothing)."""
    unfitted = _unfitted(tables, train)
    counted = replace(tables, stack=unfitted)
    similarity = _similarity(item_rows) if item_rows else _no_similarity
    # like: each validation row's parts against its label
    like_x = _like_rows(counted, validation, text_validation, similarity)
    like_y = np.array([float(r.label == "yes") for r in validation])
    like_weights, like_record = choose(like_x, like_y, LIKE_FEATURES, seed, base=COUNTS)
    # exposure: each validation pair (rated) against titles its user never rated
    pairs = _exposure_pairs(validation, titles, draw_unrated, negatives)
    exposure_y = np.array([label for _, _, label in pairs])
    exposure_x = np.vstack(
        [
            exposure_features(counted, r.preference.liked, r.preference.disliked, [item])
            for r, item, _ in pairs
        ]
    )
    exposure_weights, exposure_record = choose(exposure_x, exposure_y, EXPOSURE_FEATURES, seed)
    # a new item's exposure: the same pairs, seen through what a title nobody rated still has
    new_exposure_x = np.vstack(
        [
            new_exposure_features(
                counted, r.preference.liked, [item], similarity(r.preference.liked, item)
            )
            for r, item, _ in pairs
        ]
    )
    new_exposure_weights, new_exposure_record = choose(
        new_exposure_x, exposure_y, NEW_EXPOSURE_FEATURES, seed, constant=True
    )
    # a new item's like (no counts, no tables): the text and the user's share, both always kept,
    # since the text is all that tells one new item from another
    new_item_weights = logistic(like_x[:, NEW_ITEM_COLUMNS], like_y)
    stack = replace(
        unfitted,
        like_weights=like_weights,
        exposure_weights=exposure_weights,
        new_item_weights=new_item_weights,
        new_exposure_weights=new_exposure_weights,
    )
    record = {
        "validation_rows": len(validation),
        "like": like_record,
        "new_item": dict(
            zip([*NEW_ITEM_FEATURES, "intercept"], new_item_weights.round(6).tolist(), strict=True)
        ),
        "exposure": {**exposure_record, "negatives_per_row": negatives},
        "new_item_exposure": {
            **new_exposure_record,
            "words": len(stack.words.idf) if stack.words else 0,
        },
    }
    return replace(tables, stack=stack), record


def _like_rows(
    counted: CollaborativeTables,
    rows: Sequence[PointwiseExample],
    text: np.ndarray,
    similarity: Callable[[list[str], str], Any],
) -> np.ndarray:
    """``like_features`` of each row (its text logit from ``text``), one row each."""
    return np.vstack(
        [
            like_features(
                counted,
                r.preference.liked,
                r.preference.disliked,
                [r.candidate],
                np.array([t]),
                similarity(r.preference.liked, r.candidate),
            )
            for r, t in zip(rows, text, strict=True)
        ]
    )


def _exposure_pairs(
    rows: Sequence[PointwiseExample],
    titles: dict[str, str],
    draw_unrated: Callable[[str], str],
    negatives: int,
) -> list[tuple[PointwiseExample, str, float]]:
    """(row, title, 1.0) for each row's rated candidate and (row, title, 0.0) for ``negatives``
    titles its user never rated."""
    return [
        (r, item, label)
        for r in rows
        for item, label in [
            (r.candidate, 1.0),
            *((titles[draw_unrated(r.preference.user)], 0.0) for _ in range(negatives)),
        ]
    ]


def _unfitted(tables: CollaborativeTables, train: Sequence[PointwiseExample]) -> Stack:
    """The stack's parts that need no fitting: the counts of ``train`` and the words of the
    catalog of ``tables``; every weight zero."""
    order = sorted(tables.index, key=tables.index.__getitem__)
    rated, liked = item_counts(train, order)
    like, exposure, new_item, new_exposure = (
        np.zeros(len(f) + 1)
        for f in (LIKE_FEATURES, EXPOSURE_FEATURES, NEW_ITEM_FEATURES, NEW_EXPOSURE_FEATURES)
    )
    stack = Stack(rated, liked, like, exposure, new_item, new_exposure, Words.fit(order))
    return replace(stack, colike=colike_factors(train, order, stack))


def colike_factors(
    train: Sequence[PointwiseExample], titles: Sequence[str], stack: Stack, seed: int = 0
) -> np.ndarray:
    """[len(titles), COLIKE_DIM] float32: ``F`` with ``F @ F.T`` close to the cosines of the titles'
    like residuals (liked 1 or 0, minus the title's like rate) across the users of ``train``, its
    top singular directions (a randomized SVD with two power iterations, on the nonzero entries
    alone: memory in the number of ratings, not users x titles). Fewer columns are zero-filled."""
    index = {t: i for i, t in enumerate(titles)}
    ratings = [(u, index[t], yes) for (u, t), yes in user_ratings(train).items() if t in index]
    users: dict[str, int] = {}
    user = np.array([users.setdefault(u, len(users)) for u, _, _ in ratings], dtype=np.int64)
    item = np.array([i for _, i, _ in ratings], dtype=np.int64)
    rows = np.arange(len(titles))
    value = np.array([float(y) for _, _, y in ratings]) - stack.rates(rows, rows >= 0)[item]
    norm = np.sqrt(np.bincount(item, value * value, minlength=len(titles)))
    value = value / np.maximum(norm[item], 1e-12)
    factors = np.zeros((len(titles), COLIKE_DIM), dtype=np.float32)
    rank = min(COLIKE_DIM, len(users), len(titles))
    if rank == 0:
        return factors

    def times(x: np.ndarray) -> np.ndarray:  # R @ x: [titles, k] -> [users, k]
        out = np.zeros((len(users), x.shape[1]))
        np.add.at(out, user, value[:, None] * x[item])
        return out

    def transposed_times(y: np.ndarray) -> np.ndarray:  # R.T @ y: [users, k] -> [titles, k]
        out = np.zeros((len(titles), y.shape[1]))
        np.add.at(out, item, value[:, None] * y[user])
        return out

    width = min(rank + 8, len(users), len(titles))
    basis = np.linalg.qr(times(np.random.default_rng(seed).standard_normal((len(titles), width))))[
        0
    ]
    for _ in range(2):
        basis = np.linalg.qr(times(transposed_times(basis)))[0]
    _, singular, right = np.linalg.svd(transposed_times(basis).T, full_matrices=False)
    factors[:, :rank] = (right[:rank].T * singular[:rank]).astype(np.float32)
    return factors


def _no_similarity(liked: Sequence[str], item: str) -> np.ndarray:
    return np.zeros(1)


def _similarity(
    item_rows: dict[str, np.ndarray],
) -> Callable[[Sequence[str], str], np.ndarray]:
    """``history_similarity`` of a title to liked titles, from the model's rows by title."""
    width = len(next(iter(item_rows.values())))

    def similarity(liked: Sequence[str], item: str) -> np.ndarray:
        rows = np.array([item_rows[x] for x in liked]).reshape(-1, width)
        return history_similarity(rows, item_rows[item][None, :])

    return similarity
