"""TORCH-FREE recommendation at run time: ``Ranker``, a rank bundle's ``Predictor`` (a user's
history and candidate items in, the items best first out), with the two-tower score and the
run's item index and collaborative tables."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bundle import Bundle
from rec_edge.errors import BundleError
from rec_edge.recommend.tables import (
    CollaborativeTables,
    add_tables,
    history_similarity,
    rank_values,
)
from rec_edge.runtime.outputs import check_history, check_texts, sigmoid
from rec_edge.runtime.predictor import Predictor
from rec_edge.runtime.requests import RankRequest
from rec_edge.runtime.session import SessionConfig

# Candidates are encoded sorted by length, a few per run: titles vary from 3 to 20 tokens, and one
# batch padded to the longest cost 1.6x the runs of 3 to 5 (benchmarks/RESULTS.md, MovieLens).
ITEM_BATCH = 4


@dataclass(frozen=True)
class Ranked:
    item: str
    score: float  # what the order follows: P(the user picks and enjoys the item)
    enjoy: float  # P(the user enjoys the item | they watch it): ``Predictor.score``


def pair_scores(user: Any, items: Any) -> Any:
    """Rank bundles: the scores (logits of "yes") of user and item outputs, row by row or one
    user row against many. Each output row is an embedding and a bias: ``e_u . e_i + b_u + b_i``.
    Numpy arrays here; training calls it with torch tensors, so both sides share one formula."""
    return (user[..., :-1] * items[..., :-1]).sum(-1) + user[..., -1] + items[..., -1]


def read_item_index(
    path: Path, catalog: bool
) -> tuple[dict[str, np.ndarray], CollaborativeTables | None, dict[str, str]]:
    """A rank bundle's item index: item text -> output row, the collaborative tables if any, and
    title -> item text where an item template made the texts (``--item-template``). A decoder's
    index has no rows (its titles are read with each request), only tables."""
    try:
        with np.load(path, allow_pickle=False) as index:
            titles = index["titles"].tolist()
            rows = {}
            if "vectors" in index:
                vectors = index["vectors"]
                if vectors.ndim != 2 or len(vectors) != len(titles):
                    raise ValueError(f"{len(titles)} titles but vectors of shape {vectors.shape}")
                rows = dict(zip(titles, vectors, strict=True)) if catalog else {}
            tables = CollaborativeTables.from_arrays(index)
            aliases = {}
            if "alias_names" in index:
                names, texts = index["alias_names"].tolist(), index["alias_texts"].tolist()
                aliases = dict(zip(names, texts, strict=True))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise BundleError(
            f"{path} is not a usable item index ({type(error).__name__}: {error}). Re-export the bundle."
        ) from None
    return rows, tables, aliases


class Ranker(Predictor, task="rank"):
    """A rank bundle: ``rank(history, candidates)`` and ``score``; ``logits`` gives each text's
    output row (an embedding and a bias, see ``pair_scores``), the texts as given. Loaded by
    ``Predictor.load`` (or ``rec_edge.load``) for a rank bundle. Safe to call from several
    threads at once."""

    def __init__(
        self,
        bundle: Bundle,
        config: SessionConfig,
        item_cache: int = 10_000,
        catalog: bool = True,
        *,
        run_length: int | None = None,
    ):
        super().__init__(bundle, config, run_length=run_length)
        self._user_text = self.templates.preference_renderer()
        self.item_cache_size = item_cache
        self._items: dict[str, np.ndarray] = {}  # item text -> output row, oldest first
        self._catalog: dict[str, np.ndarray] = {}  # the item index's vectors (catalog)
        self.collaborative: CollaborativeTables | None = None  # the run's tables, if any
        self._aliases: dict[str, str] = {}  # title -> the item text (an item template)
        if self.manifest.items_file:
            self._catalog, self.collaborative, self._aliases = read_item_index(
                bundle.path / self.manifest.items_file, catalog
            )

    @classmethod
    def _open(
        cls,
        bundle: Bundle,
        config: SessionConfig,
        item_cache: int,
        catalog: bool,
        run_length: int | None,
    ) -> Ranker:
        return cls(bundle, config, item_cache, catalog, run_length=run_length)

    def _output_problems(self, width: Any) -> list[str]:
        dim = self.manifest.source.get("head", {}).get("dim")
        if isinstance(width, int) and isinstance(dim, int) and width != dim + 1:
            return [f"the graph gives rows of {width} values, the two-tower head {dim} + a bias"]
        return []

    @property
    def catalog(self) -> list[str]:
        """The titles of the item index (empty when loaded with catalog=False)."""
        return list(self._catalog)

    def score(self, history: Mapping[str, Sequence[str]], candidates: Sequence[str]) -> np.ndarray:
        """P(the user enjoys each candidate | they watch it), float32, in the order
        given.

        ``history`` holds the titles the user ``liked`` and ``disliked`` (oldest first). The user's
        text is encoded once; each candidate's vector comes from the bundle's item index (the
        run's catalog, ``catalog=True``), from the item cache (the last ``item_cache`` items
        encoded since load), or is encoded: sorted by length, ``ITEM_BATCH`` per run. The run's
        collaborative tables (in the item index file, used with either ``catalog``) add their
        like terms.
        """
        return sigmoid(self._logits(history, candidates)[0]).astype(np.float32)

    def _logits(
        self, history: Mapping[str, Sequence[str]], candidates: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The like logits of ``candidates`` and, with collaborative tables, their exposure
        logits."""
        liked, disliked = self._history(history)
        items = self._item_texts(check_texts(candidates))
        if not items:  # nothing to score: no encoder run
            return np.zeros(0, dtype=np.float32), None
        user = self.logits([self._user_text(liked, disliked)])[0]
        return self._like_logits(user, liked, disliked, items)

    def _history(self, history: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
        """The liked and disliked titles of a rank request, checked."""
        liked, disliked = check_history(history)
        return self._item_texts(liked), self._item_texts(disliked)

    def _item_texts(self, titles: list[str]) -> list[str]:
        """Each catalog item named by its title as its item text (bundles made with
        ``--item-template``); other texts as they are."""
        return [self._aliases.get(t, t) for t in titles] if self._aliases else titles

    def _like_logits(
        self, user: np.ndarray, liked: list[str], disliked: list[str], items: list[str]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The like (and exposure) logits of ``items`` for a user whose output row is ``user``."""
        stacked = self.collaborative is not None and self.collaborative.stack is not None
        liked_rows = self.item_outputs(liked) if stacked else None  # history first, then items
        rows = self.item_outputs(items)
        similarity = history_similarity(liked_rows, rows) if liked_rows is not None else None
        return add_tables(
            self.collaborative, liked, disliked, items, pair_scores(user, rows), similarity
        )

    def item_outputs(self, items: Sequence[str]) -> np.ndarray:
        """The output rows of item texts, from the item index, the cache, or
        encoded."""
        known = {t: self._catalog[t] for t in items if t in self._catalog}
        with self._lock:
            known.update((t, self._items[t]) for t in items if t in self._items)
        missing = list(dict.fromkeys(t for t in items if t not in known))
        if missing:
            rows = self.logits(missing, batch_size=ITEM_BATCH)
            known.update(zip(missing, rows, strict=True))
            if self.item_cache_size:
                with self._lock:
                    for text, row in zip(missing, rows, strict=True):
                        self._items[text] = row
                    while len(self._items) > self.item_cache_size:
                        del self._items[next(iter(self._items))]
        return np.stack([known[t] for t in items]) if items else np.zeros((0, 0), np.float32)

    def rank(
        self, history: Mapping[str, Sequence[str]], candidates: Sequence[str], k: int | None = None
    ) -> list[Ranked]:
        """Candidates best first: by P(picks and enjoys) = P(watches) x P(enjoys |
        watches) with the run's collaborative tables, by P(enjoys) without them."""
        items = check_texts(candidates)
        return ranked(items, *self._logits(history, items), k)

    def rank_batch(
        self, requests: Sequence[RankRequest], batch_size: int = 32
    ) -> list[list[Ranked]]:
        """Several users' requests at once, their texts encoded together (servers, batch jobs),
        ``batch_size`` per session run, sorted by length. Each answer is the one ``rank`` gives
        that request alone."""
        checked = [(self._history(r.history), check_texts(r.candidates)) for r in requests]
        asking = [i for i, (_, items) in enumerate(checked) if items]
        users = self.logits([self._user_text(*checked[i][0]) for i in asking], batch_size)
        answers: list[list[Ranked]] = [[] for _ in requests]
        for row, i in zip(users, asking, strict=True):
            (liked, disliked), items = checked[i]
            like = self._like_logits(row, liked, disliked, self._item_texts(items))
            answers[i] = ranked(items, *like, requests[i].k)
        return answers


def ranked(
    items: list[str], like: np.ndarray, exposure: np.ndarray | None, k: int | None
) -> list[Ranked]:
    """Items best first by ``rank_values`` of their like and exposure logits; the top ``k``
    (ties in the order given). Only the kept items become objects: a batch job ranks whole
    catalogs for every user."""
    if like.size == 0:
        return []
    values = rank_values(like, exposure)
    order = np.argsort(-values, kind="stable")[:k]
    enjoy = sigmoid(like[order])
    scores = np.exp(values[order].astype(np.float64))
    return [
        Ranked(items[i], s, p)
        for i, s, p in zip(order.tolist(), scores.tolist(), enjoy.tolist(), strict=True)
    ]
