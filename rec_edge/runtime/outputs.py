"""TORCH-FREE: what every runtime object answers with, and the checks of what it is given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rec_edge.errors import DataError


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


@dataclass(frozen=True)
class Prediction:
    """One text's answer: the label, its probability, every label's probability."""

    label: str
    score: float
    scores: dict[str, float]


def check_texts(texts: Any) -> list[str]:
    """``texts`` as a list of strings, or a DataError naming every item that is not one."""
    if isinstance(texts, (str, bytes)):
        raise DataError(
            f"texts must be a list of strings, got a single {type(texts).__name__}; wrap it: [text]."
        )
    try:
        items = list(texts)
    except TypeError:
        raise DataError(f"texts must be a list of strings, got {type(texts).__name__}.") from None
    problems = [
        f"texts[{i}] is {'None' if t is None else type(t).__name__}; expected a string"
        for i, t in enumerate(items)
        if not isinstance(t, str)
    ]
    if problems:
        raise DataError(problems)
    return items


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def label_predictions(labels: Sequence[str], logits: np.ndarray) -> list[Prediction]:
    """One Prediction per row of ``logits`` (columns in the order of ``labels``): the softmax's
    best label, its probability and every label's."""
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=-1)
    return [
        Prediction(labels[b], row[b], dict(zip(labels, row, strict=True)))
        for b, row in zip(best.tolist(), probabilities.tolist(), strict=True)
    ]


def check_history(history: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
    """The liked and disliked titles of a rank request, or a DataError naming each problem."""
    problems = [
        f"history[{key!r}] must be a list of titles"
        for key in ("liked", "disliked")
        if not isinstance(history.get(key, []), (list, tuple))
    ]
    unknown = sorted(set(history) - {"liked", "disliked"})
    if unknown:
        problems.append(f"history has unknown keys {unknown} (known: liked, disliked)")
    if problems:
        raise DataError(problems)
    liked, disliked = list(history.get("liked", [])), list(history.get("disliked", []))
    check_texts(liked + disliked)
    return liked, disliked
