"""Recommendation as instruction following: the TALLRec pointwise and InstructRec ranking protocols.

Pointwise (TALLRec): per user, in time order, each rated item after a full history of the last
``history`` rated items is a yes/no question (liked = rating > ``threshold``); examples are split
8:1:1 by the target's time. Ranking (InstructRec, LLMRank): leave-one-out by time, the user's last
liked item among ``negatives`` items the user never rated, drawn with a seeded generator.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rec_edge.recommend.interactions import Interaction, InteractionData


@dataclass(frozen=True)
class Preference:
    user: str
    liked: list[str]  # titles, oldest first
    disliked: list[str]


@dataclass(frozen=True)
class PointwiseExample:
    preference: Preference
    candidate: str  # title
    label: str  # "yes" | "no"
    timestamp: float
    item: str = ""  # the candidate's item id


@dataclass(frozen=True)
class RankingCase:
    preference: Preference
    candidates: list[str]  # item ids, shuffled; the target among them
    target: str  # item id


def _timelines(data: InteractionData) -> dict[str, list[Interaction]]:
    users: dict[str, list[Interaction]] = defaultdict(list)
    for row in data.interactions:
        users[row.user].append(row)
    return {
        u: sorted(rows, key=lambda r: (r.timestamp, r.item)) for u, rows in sorted(users.items())
    }


def _preference(
    user: str, history: list[Interaction], data: InteractionData, threshold: float
) -> Preference:
    return Preference(
        user,
        [data.titles[r.item] for r in history if r.rating > threshold],
        [data.titles[r.item] for r in history if r.rating <= threshold],
    )


def pointwise_splits(
    data: InteractionData,
    history: int = 10,
    threshold: float = 3.0,
    fractions: tuple[float, float] = (0.8, 0.1),
) -> dict[str, list[PointwiseExample]]:
    """{"train", "validation", "test"}: every example after a full history, split by its time."""
    examples = []
    for user, rows in _timelines(data).items():
        for i in range(history, len(rows)):
            target = rows[i]
            examples.append(
                PointwiseExample(
                    _preference(user, rows[i - history : i], data, threshold),
                    data.titles[target.item],
                    "yes" if target.rating > threshold else "no",
                    target.timestamp,
                    target.item,
                )
            )
    examples.sort(key=lambda e: (e.timestamp, e.preference.user))
    a = int(len(examples) * fractions[0])
    b = int(len(examples) * (fractions[0] + fractions[1]))
    return {"train": examples[:a], "validation": examples[a:b], "test": examples[b:]}


def ranking_cases(
    data: InteractionData,
    history: int = 10,
    negatives: int = 19,
    threshold: float = 3.0,
    seed: int = 0,
) -> list[RankingCase]:
    """One case per user who has a liked item with at least one rated item before it."""
    catalog = sorted(data.titles)
    cases = []
    for user, rows in _timelines(data).items():
        liked_at = [i for i, r in enumerate(rows) if r.rating > threshold and i > 0]
        if not liked_at:
            continue
        last = liked_at[-1]
        rated = {r.item for r in rows}
        unrated = [item for item in catalog if item not in rated]
        if len(unrated) < negatives:
            continue
        rng = random.Random(f"{seed}:{user}")
        candidates = [rows[last].item, *rng.sample(unrated, negatives)]
        rng.shuffle(candidates)
        cases.append(
            RankingCase(
                _preference(user, rows[max(0, last - history) : last], data, threshold),
                candidates,
                rows[last].item,
            )
        )
    return cases


def ranking_targets(data: InteractionData, history: int = 10) -> set[tuple[str, str]]:
    """The (user, item) pairs the leave-one-out ranking holds out."""
    return {(c.preference.user, c.target) for c in ranking_cases(data, history=history)}


def rank_training_rows(
    data: InteractionData, train: list[PointwiseExample], history: int = 10
) -> list[PointwiseExample]:
    """The pointwise training split ``train`` minus the leave-one-out ranking targets, in order:
    what a rank run trains on, so that the ranking evaluation never scores a trained pair."""
    held_out = ranking_targets(data, history)
    return [e for e in train if (e.preference.user, e.item) not in held_out]


def rated_items(
    data: InteractionData, held_out: set[tuple[str, str]] | None = None
) -> dict[str, set[str]]:
    """``user -> the item ids they rated``, leaving out the ``held_out`` (user, item) pairs: what
    training may know, so that a held-out target can still be drawn as a negative."""
    skip = held_out or set()
    rated: dict[str, set[str]] = defaultdict(set)
    for row in data.interactions:
        if (row.user, row.item) not in skip:
            rated[row.user].add(row.item)
    return dict(rated)


def unrated_sampler(
    data: InteractionData, seed: int = 0, held_out: set[tuple[str, str]] | None = None
) -> Callable[[str], str]:
    """``user -> item id`` drawn uniformly (seeded) from the items the user never rated (the
    ``held_out`` pairs count as never rated)."""
    catalog = sorted(data.titles)
    rated = rated_items(data, held_out)
    rng = random.Random(seed)

    def draw(user: str) -> str:
        seen = rated.get(user, set())
        if len(seen) >= len(catalog):
            raise ValueError(f"user {user} rated every item; no negative to draw")
        while True:
            item = catalog[rng.randrange(len(catalog))]
            if item not in seen:
                return item

    return draw


def user_ratings(rows: Sequence[PointwiseExample]) -> dict[tuple[str, str], bool]:
    """``(user, title) -> liked?`` over the rows: the targets and the titles of their histories,
    each pair once, its latest label kept."""
    seen: dict[tuple[str, str], bool] = {}
    for row in rows:
        user = row.preference.user
        seen.update(((user, t), True) for t in row.preference.liked)
        seen.update(((user, t), False) for t in row.preference.disliked)
        seen[(user, row.candidate)] = row.label == "yes"
    return seen


def item_counts(
    rows: Sequence[PointwiseExample], titles: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """How many training rows rated each title, and liked it (``user_ratings``: each (user,
    title) once, its latest label kept)."""
    index = {t: i for i, t in enumerate(titles)}
    rated, liked = np.zeros(len(titles)), np.zeros(len(titles))
    for (_, title), yes in user_ratings(rows).items():
        if title in index:
            rated[index[title]] += 1
            liked[index[title]] += yes
    return rated, liked


def hold_out_items(data: InteractionData, fraction: float = 0.2, seed: int = 0) -> set[str]:
    """New items for the cold-start protocol: the item ids of ``fraction`` of the rated items'
    titles, seeded. Items that share a title (MovieLens has such) are held out together, so that
    no new item's text is in the training catalog."""
    by_title: dict[str, set[str]] = defaultdict(set)
    for item in {r.item for r in data.interactions}:
        by_title[data.titles[item]].add(item)
    titles = sorted(by_title)
    chosen = random.Random(f"cold:{seed}").sample(titles, round(fraction * len(titles)))
    return {item for title in chosen for item in by_title[title]}


def new_item_cases(
    data: InteractionData,
    new: set[str],
    history: int = 10,
    negatives: int = 19,
    threshold: float = 3.0,
    seed: int = 0,
) -> list[RankingCase]:
    """Cold-start ranking: per user, the last liked item of ``new`` (with a rated item before it)
    among ``negatives`` items of ``new`` the user never rated (seeded); the history is the
    ``history`` items rated before it, new ones included."""
    pool = sorted(new)
    cases = []
    for user, rows in _timelines(data).items():
        liked_at = [
            i for i, r in enumerate(rows) if r.item in new and r.rating > threshold and i > 0
        ]
        rated = {r.item for r in rows}
        unrated = [item for item in pool if item not in rated]
        if not liked_at or len(unrated) < negatives:
            continue
        last = liked_at[-1]
        rng = random.Random(f"{seed}:{user}")
        candidates = [rows[last].item, *rng.sample(unrated, negatives)]
        rng.shuffle(candidates)
        preference = _preference(user, rows[max(0, last - history) : last], data, threshold)
        cases.append(RankingCase(preference, candidates, rows[last].item))
    return cases
