"""Classification metrics in numpy (torch-free): accuracy, macro-F1, a per-class report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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
