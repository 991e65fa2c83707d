"""Metrics in numpy (torch-free): accuracy, macro-F1, a per-class report; AUC and its paired
standard error; ranking hit rates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# a classify run's validation report keeps one entry a text under these keys (run.json only:
# what the paired comparison of two runs on the same texts needs, train.compare)
PER_TEXT = ("correct", "true_log_prob")


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 over the classes present in y_true or y_pred, and per-class P/R/F1/support."""
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape or true.size == 0:
        raise ValueError(
            f"y_true and y_pred must be equal-length and non-empty ({true.size}, {pred.size})"
        )
    n = len(labels)
    confusion = np.bincount(true * n + pred, minlength=n * n).reshape(n, n)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0
    )
    present = (support > 0) | (predicted > 0)
    return {
        "accuracy": float(tp.sum() / true.size),
        "macro_f1": float(f1[present].mean()),
        "n": int(true.size),
        "per_class": {
            labels[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(n)
            if present[i]
        },
    }


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties share their average rank)."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(y.sum()), int((1 - y).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both positive and negative labels")
    ranks = _midranks(s)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auc_difference_se(
    labels: Sequence[int] | np.ndarray,
    first: Sequence[float] | np.ndarray,
    second: Sequence[float] | np.ndarray,
) -> float:
    """Standard error of ``roc_auc(labels, first) - roc_auc(labels, second)`` for two scores of
    the same rows (DeLong, DeLong and Clarke-Pearson 1988: the paired variance of the two AUCs'
    structural components, from midranks); 0.0 with fewer than two rows of either label."""
    y = np.asarray(labels, dtype=np.int64) == 1
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return 0.0
    above, below = [], []  # per positive: the share of negatives below it; per negative: above
    for scores in (first, second):
        s = np.asarray(scores, dtype=np.float64)
        ranks = _midranks(s)
        above.append((ranks[y] - _midranks(s[y])) / n)
        below.append(1.0 - (ranks[~y] - _midranks(s[~y])) / m)
    variance = np.var(above[0] - above[1], ddof=1) / m + np.var(below[0] - below[1], ddof=1) / n
    return float(np.sqrt(variance))


def _midranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(scores, kind="mergesort")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def ranking_metrics(
    ranked: Sequence[Sequence[str]], targets: Sequence[str], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """HR@k and NDCG@k with one relevant item per list (rank r counts 1/log2(r + 1))."""
    positions = [
        list(items).index(target) + 1 for items, target in zip(ranked, targets, strict=True)
    ]
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = float(np.mean([p <= k for p in positions]))
        out[f"NDCG@{k}"] = float(
            np.mean([1 / np.log2(p + 1) if p <= k else 0.0 for p in positions])
        )
    return out


def pair_report(labels: Sequence[int], scores: Any) -> dict[str, Any]:
    """Yes/no scores (logits) of (user, item) pairs: AUC, accuracy at P(yes) = 0.5, counts."""
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    return {
        "auc": roc_auc(y.tolist(), s.tolist()),
        "accuracy": float(((s > 0).astype(np.int64) == y).mean()) if len(y) else 0.0,
        "n": len(y),
        "positives": int(y.sum()),
    }


def selection_report(logits: np.ndarray, label_ids: Any, labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1 and ``selection``: accuracy, ties broken by the mean log-likelihood of
    the true labels. A validation set of 16 texts moves accuracy in steps of 6 points; the
    likelihood still tells two checkpoints apart (what early stopping and the best model use)."""
    report = classification_report(label_ids, np.argmax(logits, axis=-1), labels)
    likelihood = float(true_log_probs(logits, label_ids).mean()) if len(logits) else 0
    report["selection"] = report["accuracy"] + 0.01 * max(likelihood, -10.0)
    return report


def true_log_probs(logits: np.ndarray, label_ids: Any) -> np.ndarray:
    """Each text's log-probability of its true label (a softmax over the logits)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return log_probs[np.arange(len(logits)), np.asarray(label_ids)]
