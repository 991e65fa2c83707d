"""How far counting goes on MovieLens-100K at full data: the rank stack's count parts (what every
full-data bundle keeps, its text left out), then variants of them, each fitted as the stack is
(a logistic regression on the same 3,000 validation rows) and scored on the TALLRec test rows.
No model is trained: the counts do not depend on one, so the first line reproduces the
full-data bundles' test AUC. Seconds on 2 cores.

    python benchmarks/ml100k_counts.py --out benchmarks/results/ml100k-counts

Variants: the item's popularity as a part; the like rate's prior (PRIOR_ROWS) at 1 and 20 rows;
the lenience of the last 5 history titles, weighed by the titles' rating counts, and the
history's popularity; EASE (Steck 2019: a closed-form item-item regression, here on the users x
titles matrix of like residuals) beside or instead of the co-liked history; scikit-learn's
gradient boosting on the parts; and the counts recounted with the validation rows after the
weights are fitted (a different protocol: the validation rows' ratings become training data).
Each line has its test AUC, its difference to the first and DeLong's standard error of that
difference (paired, on the same test rows).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.config import TrainConfig
from rec_edge.data.tasks import rank_rows
from rec_edge.metrics import auc_difference_se, roc_auc
from rec_edge.recommend.collab import CollabConfig, choosing_rows
from rec_edge.recommend.protocols import (
    PointwiseExample,
    item_counts,
    pointwise_splits,
    user_ratings,
)
from rec_edge.recommend.stack import COLIKE_DIM, colike_factors, logistic
from rec_edge.recommend.tables import (
    EXPOSURE_FEATURES,
    LIKE_FEATURES,
    NEW_ITEM_FEATURES,
    CollaborativeTables,
    Stack,
    like_features,
    logit,
)
from rec_edge.versions import machine, versions

# the count parts the full-data bundles keep (and "user liked share", which the stack offers)
PARTS = ("user liked share", "item like rate", "user lenience", "co-liked history")
COLUMNS = [LIKE_FEATURES.index(p) for p in PARTS]


class Counts:
    """The stack's counts of some training rows, and what the variants need of them."""

    def __init__(self, rows: Sequence[PointwiseExample], titles: list[str]) -> None:
        self.titles, self.index = titles, {t: i for i, t in enumerate(titles)}
        self.rated, self.liked = item_counts(rows, titles)
        weights = [
            np.zeros(len(f) + 1) for f in (LIKE_FEATURES, EXPOSURE_FEATURES, NEW_ITEM_FEATURES)
        ]
        stack = Stack(self.rated, self.liked, *weights)
        self.stack = replace(stack, colike=colike_factors(rows, titles, stack))
        # no tables: their like terms are a column the lines below never use
        bias, vectors = np.zeros(len(titles), np.float32), np.zeros((len(titles), 1), np.float32)
        self.tables = CollaborativeTables(
            self.index, bias, vectors, vectors, vectors, bias, vectors, 0.0, stack=self.stack
        )
        self.rows = rows

    def rates(self, rows: np.ndarray, prior: float) -> np.ndarray:
        mean = self.liked.sum() / self.rated.sum()
        return (self.liked[rows] + prior * mean) / (self.rated[rows] + prior)

    def parts(self, examples: Sequence[PointwiseExample]) -> np.ndarray:
        """[len(examples), len(PARTS)]: the bundle's own like features (``like_features``)."""
        return np.vstack(
            [
                like_features(
                    self.tables, e.preference.liked, e.preference.disliked, [e.candidate],
                    np.zeros(1),
                )[:, COLUMNS]
                for e in examples
            ]
        )  # fmt: skip

    def history(self, e: PointwiseExample) -> tuple[np.ndarray, np.ndarray, int]:
        """The history's catalog rows, their like residuals (prior as the stack's), the candidate."""
        liked, disliked = e.preference.liked, e.preference.disliked
        rows = np.array([self.index[t] for t in [*liked, *disliked]], dtype=np.int64)
        labels = np.array([1.0] * len(liked) + [0.0] * len(disliked))
        return rows, labels - self.stack.rates(rows, rows >= 0), self.index[e.candidate]

    def ease(self, penalty: float) -> np.ndarray:
        """EASE's item-item weights on the users x titles matrix of like residuals."""
        users: dict[str, int] = {}
        ratings = user_ratings(self.rows)
        every = np.arange(len(self.titles))
        rates = self.stack.rates(every, every >= 0)  # the prior of the stack's like rate
        matrix = np.zeros((len({u for u, _ in ratings}), len(self.titles)))
        for (user, title), yes in ratings.items():
            row = self.index[title]
            matrix[users.setdefault(user, len(users)), row] = float(yes) - rates[row]
        inverse = np.linalg.inv(matrix.T @ matrix + penalty * np.eye(len(self.titles)))
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        return weights


def extras(counts: Counts, ease: dict[float, np.ndarray]) -> dict[str, Callable[..., float]]:
    """Named one-column variants: f(history rows, residuals, candidate) -> value."""
    pop = np.log1p(counts.rated)
    out: dict[str, Callable[..., float]] = {
        "item popularity": lambda h, r, c: float(pop[c]),
        "rate, prior 1 row": lambda h, r, c: float(logit(counts.rates(np.array([c]), 1.0))[0]),
        "rate, prior 20 rows": lambda h, r, c: float(logit(counts.rates(np.array([c]), 20.0))[0]),
        "recent lenience (last 5)": lambda h, r, c: float(r[-5:].sum() / 7),
        "history popularity": lambda h, r, c: float(pop[h].mean()),
        "lenience by rating count": lambda h, r, c: float((r * pop[h]).sum() / (len(r) + 2)),
    }
    for penalty, weights in ease.items():
        out[f"EASE, penalty {penalty:g}"] = lambda h, r, c, w=weights: float(r @ w[h, c])
    return out


def variants(base: list[str]) -> list[tuple[str, list[str]]]:
    """(label, columns) of every line after the first."""
    ease = [c for c in base if c.startswith("EASE")]
    lines = [(f"+ {c}", [*PARTS, c]) for c in base if not c.startswith("rate,")]
    lines += [(f"{c} instead of the item like rate", [PARTS[0], c, *PARTS[2:]])
              for c in base if c.startswith("rate,")]  # fmt: skip
    lines += [(f"{c} instead of the co-liked history", [*PARTS[:3], c]) for c in ease]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/ml-100k")
    parser.add_argument("--out", default="benchmarks/results/ml100k-counts")
    parser.add_argument("--penalties", default="20,100,500,2000", help="EASE's L2 penalties")
    args = parser.parse_args()
    config = TrainConfig(train_file=args.data, task="rank", validation_limit=3000)
    data, splits = rank_rows(config)
    train, fit = splits["train"], choosing_rows(splits["validation"], CollabConfig(), 3000)
    test = pointwise_splits(data)["test"]
    titles = sorted(set(data.titles.values()))
    y_fit = np.array([e.label == "yes" for e in fit], dtype=np.float64)
    y_test = np.array([e.label == "yes" for e in test], dtype=np.int64)

    def table(counts: Counts) -> dict[str, np.ndarray]:
        """Every column for the fit rows and the test rows, by name (fit rows first)."""
        ease = {float(p): counts.ease(float(p)) for p in args.penalties.split(",")}
        columns = {p: counts.parts([*fit, *test])[:, i] for i, p in enumerate(PARTS)}
        histories = [counts.history(e) for e in [*fit, *test]]
        for name, f in extras(counts, ease).items():
            columns[name] = np.array([f(h, r, c) for h, r, c in histories])
        return columns

    counts = Counts(train, titles)
    columns = table(counts)
    n = len(fit)

    def score(names: Sequence[str], test_columns: dict[str, np.ndarray] = columns) -> np.ndarray:
        x = np.column_stack([columns[c] for c in names])
        w = logistic(x[:n], y_fit)
        return np.column_stack([test_columns[c] for c in names])[n:] @ w[:-1] + w[-1]

    first = score(PARTS)
    lines: list[dict[str, Any]] = []

    def line(label: str, scores: np.ndarray) -> None:
        auc = roc_auc(y_test.tolist(), scores.tolist())
        se = auc_difference_se(y_test, scores, first) if lines else 0.0
        base = lines[0]["test_auc"] if lines else auc
        lines.append({"variant": label, "test_auc": round(auc, 5),
                      "difference": round(auc - base, 5), "se": round(se, 5)})  # fmt: skip
        print(f"{label:60s} {auc:.5f}  {auc - base:+.5f} ± {se:.5f}", flush=True)

    line("the bundle's count parts: " + " + ".join(PARTS), first)
    extra_names = [c for c in columns if c not in PARTS]
    for label, names in variants(extra_names):
        line(label, score(names))
    every = [*PARTS, *(c for c in extra_names if not c.startswith(("rate,", "EASE")))]
    line("+ every variant but the rates and EASE", score(every))
    from sklearn.ensemble import HistGradientBoostingClassifier

    boosted = [*PARTS, "item popularity"]
    model = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=8, min_samples_leaf=50, random_state=0
    ).fit(np.column_stack([columns[c] for c in boosted])[:n], y_fit)
    x_test = np.column_stack([columns[c] for c in boosted])[n:]
    line("gradient boosting on the parts + item popularity", model.predict_proba(x_test)[:, 1])
    # recounted: the weights as fitted above, the counts of the training and the fit rows
    recounted = table(Counts([*train, *fit], titles))
    line("recounted with the fit rows (another protocol)", score(PARTS, recounted))
    best_ease = max((c for c in extra_names if c.startswith("EASE")),
                    key=lambda c: next(r["test_auc"] for r in lines if r["variant"] == f"+ {c}"))  # fmt: skip
    line(f"recounted, + {best_ease} (another protocol)", score([*PARTS, best_ease], recounted))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"rows": {"train": len(train), "fit": n, "test": len(test)}, "colike_dim": COLIKE_DIM,
              "lines": lines, "machine": machine(), "versions": versions()}  # fmt: skip
    (out / "counts.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
