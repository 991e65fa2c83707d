"""Seeded, stratified sampling: few-shot draws and validation hold-outs."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from rec_edge.data.readers import Example


def _by_label(examples: Sequence[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[str(example.label)].append(example)
    return dict(sorted(groups.items()))


def few_shot(examples: Sequence[Example], shots: int, seed: int) -> list[Example]:
    """K examples per class (all of a class that has fewer), drawn with a seeded generator."""
    rng = random.Random(seed)
    chosen: list[Example] = []
    for group in _by_label(examples).values():
        chosen.extend(rng.sample(group, min(shots, len(group))))
    rng.shuffle(chosen)
    return chosen


def stratified_split(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, held out): ``fraction`` of each class held out, at least one per class that has two."""
    rng = random.Random(seed)
    train: list[Example] = []
    held: list[Example] = []
    for group in _by_label(examples).values():
        group = list(group)
        rng.shuffle(group)
        n = min(max(1, round(len(group) * fraction)), len(group) - 1)
        held.extend(group[:n])
        train.extend(group[n:])
    rng.shuffle(train)
    rng.shuffle(held)
    return train, held
