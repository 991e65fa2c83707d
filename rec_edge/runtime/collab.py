"""A rank bundle's collaborative tables: what the run's interactions say about each catalog item
that its title does not, fitted with the text encoder frozen (``rec_edge.train.collab``).

With ``q_u = sum(y_j, j liked) / sqrt(n_liked) + sum(z_j, j disliked) / sqrt(n_disliked)`` over the
user's history titles found in the catalog, and ``share_u`` the liked share of the history:

- like logit     ``text(u, i) + c_i + q_u . v_i + w * share_u``: P(the user enjoys i | watches i)
- exposure logit ``d_i + q_u . x_i``: P(the user watches i at all), against never-rated items

``rank`` orders candidates by ``log P(watches) + log P(enjoys | watches)``; ``score`` is the like
probability (the TALLRec question). A title outside the catalog gets the text score alone and the
catalog's mean exposure; history titles outside the catalog count in ``share_u`` only.
numpy only: the training module mirrors these formulas in torch, and a test holds them equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLES = (
    "like_bias",  # c [N]
    "like_vectors",  # v [N, D]
    "liked_vectors",  # y [N, D]
    "disliked_vectors",  # z [N, D]
    "exposure_bias",  # d [N]
    "exposure_vectors",  # x [N, D]
)


@dataclass(frozen=True)
class UserTerms:
    vector: np.ndarray  # q_u [D]
    like_offset: float  # w * share_u


@dataclass(frozen=True)
class CollaborativeTables:
    index: dict[str, int]  # catalog title -> row
    like_bias: np.ndarray
    like_vectors: np.ndarray
    liked_vectors: np.ndarray
    disliked_vectors: np.ndarray
    exposure_bias: np.ndarray
    exposure_vectors: np.ndarray
    share_weight: float

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> CollaborativeTables | None:
        """From an item index's arrays (``titles`` and the ``TABLES``); None if it has none."""
        if "like_bias" not in arrays:
            return None
        titles = arrays["titles"].tolist()
        tables = {k: np.asarray(arrays[k], dtype=np.float32) for k in TABLES}
        wrong = [f"{k} {v.shape}" for k, v in tables.items() if len(v) != len(titles)]
        dims = {v.shape[1] for k, v in tables.items() if v.ndim == 2}
        if wrong or len(dims) > 1:
            raise ValueError(f"tables do not fit {len(titles)} titles: {', '.join(wrong) or dims}")
        return cls(
            {t: i for i, t in enumerate(titles)},
            **tables,
            share_weight=float(arrays["share_weight"]),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {k: getattr(self, k) for k in TABLES}
        return {**arrays, "share_weight": np.float32(self.share_weight)}

    @property
    def dim(self) -> int:
        return int(self.like_vectors.shape[1])

    def user(self, liked: Sequence[str], disliked: Sequence[str]) -> UserTerms:
        q = np.zeros(self.dim, dtype=np.float32)
        for titles, table in ((liked, self.liked_vectors), (disliked, self.disliked_vectors)):
            rows = [self.index[t] for t in titles if t in self.index]
            if rows:
                q += table[rows].sum(0) / np.sqrt(len(rows))
        rated = len(liked) + len(disliked)
        share = len(liked) / rated if rated else 0.0
        return UserTerms(q, self.share_weight * share)

    def _rows(self, items: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.array([self.index.get(t, 0) for t in items], dtype=np.int64)
        known = np.array([t in self.index for t in items], dtype=bool)
        return rows, known

    def like(self, user: UserTerms, items: Sequence[str]) -> np.ndarray:
        """The collaborative part of each item's like logit (0 off the catalog, but ``w * share_u``)."""
        rows, known = self._rows(items)
        terms = self.like_bias[rows] + self.like_vectors[rows] @ user.vector
        return np.where(known, terms, 0.0).astype(np.float32) + np.float32(user.like_offset)

    def exposure(self, user: UserTerms, items: Sequence[str]) -> np.ndarray:
        """Each item's exposure logit (the catalog's mean bias off the catalog)."""
        rows, known = self._rows(items)
        terms = self.exposure_bias[rows] + self.exposure_vectors[rows] @ user.vector
        return np.where(known, terms, self.exposure_bias.mean()).astype(np.float32)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def load_tables(path: Path) -> CollaborativeTables | None:
    """The collaborative tables of a bundle's item index file, if it holds them."""
    with np.load(path, allow_pickle=False) as arrays:
        return CollaborativeTables.from_arrays(arrays)


def add_tables(
    tables: CollaborativeTables | None,
    liked: Sequence[str],
    disliked: Sequence[str],
    items: Sequence[str],
    text: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The like logits (``text`` plus the tables' like terms) and the exposure logits (None
    without tables) of ``items`` for the user with this history."""
    if tables is None:
        return text, None
    user = tables.user(liked, disliked)
    return text + tables.like(user, items), tables.exposure(user, items)


def rank_values(like: np.ndarray, exposure: np.ndarray | None) -> np.ndarray:
    """What candidates are ordered by: log P(watches) + log P(enjoys | watches)."""
    return log_sigmoid(like) + (log_sigmoid(exposure) if exposure is not None else 0.0)
