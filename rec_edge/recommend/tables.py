"""A rank bundle's collaborative tables: what the run's interactions say about each catalog item
that its title does not, fitted with the text encoder frozen (``rec_edge.recommend.collab``).

With ``q_u = sum(y_j, j liked) / sqrt(n_liked) + sum(z_j, j disliked) / sqrt(n_disliked)`` over the
user's history titles found in the catalog, and ``share_u`` the liked share of the history:

- like logit     ``text(u, i) + c_i + q_u . v_i + w * share_u``: P(the user enjoys i | watches i)
- exposure logit ``d_i + q_u . x_i``: P(the user watches i at all), against never-rated items

``rank`` orders candidates by ``log P(watches) + log P(enjoys | watches)``; ``score`` is the like
probability (the TALLRec question). A title outside the catalog gets the text score alone and the
catalog's mean exposure; history titles outside the catalog count in ``share_u`` only.
numpy only: the training module mirrors these formulas in torch, and a test holds them equal.

A stacked bundle (schema 1.3, ``rec_edge.recommend.stack``) also holds per-item counts of the
training rows (how often each title was rated, and liked) and weights fitted on validation rows:

- like logit     ``a.[text, tables' like terms, logit(share_u), logit(like rate_i)] + b``
- exposure logit ``e.[tables' exposure, log(1 + ratings_i)] + f``

so that no part (the text, the tables, the counts) is drowned by another: with 64 training rows
the text and the tables know little and the counts and the user's liked share carry the score.
A fifth part is the candidate's similarity to the liked history titles in the model's own item
space (``history_similarity``), a content signal that needs no interactions. A title outside the
catalog (a new item) has no counts and no tables: its like logit is
``n.[text, logit(share_u), similarity] + m``, weights fitted for that case, so that what the
model reads orders new items. Schema 1.4 adds their exposure, which the tables cannot give
either: ``g.[similarity, word similarity] + h``, the word similarity being the TF-IDF cosine of
the item's text with the liked history texts (``Words``: the catalog's word weights), so that
among new items the ones like what the user watched come first.

Schema 1.5 adds two like parts that the counts give beyond the two rates: the user's **lenience**
(``sum_h (y_h - rate_h) / (n + 2)`` over the history titles: how much more the user liked them than
everybody did, a liked share that knows which titles are easy to like) and the candidate's
**co-liked history** (``sum_h s(i, h) (y_h - rate_h) / (sum_h |s(i, h)| + 1)``, with ``s`` the
cosine of two titles' like residuals across the training users, from low-rank co-like factors:
item-based collaborative filtering on liked / not liked). Bundles before 1.5 weigh both 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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
    stack: Stack | None = None  # None: tables from before the stack (like = text + terms)

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
            stack=Stack.from_arrays(arrays, len(titles)),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {k: getattr(self, k) for k in TABLES}
        stack = self.stack.to_arrays() if self.stack is not None else {}
        return {**arrays, "share_weight": np.float32(self.share_weight), **stack}

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


LIKE_FEATURES = (
    "text",
    "tables",
    "user liked share",
    "item like rate",
    "history similarity",
    "user lenience",  # schema 1.5
    "co-liked history",  # schema 1.5
)
LIKE_FEATURES_BEFORE_1_5 = 5  # like weights of bundles before 1.5 cover the first five
EXPOSURE_FEATURES = ("tables", "item ratings")
# a title outside the catalog: no counts, no tables
NEW_ITEM_FEATURES = ("text", "user liked share", "history similarity")
FEATURES = (LIKE_FEATURES, EXPOSURE_FEATURES, NEW_ITEM_FEATURES)
NEW_EXPOSURE_FEATURES = ("history similarity", "word similarity")  # schema 1.4
PRIOR_ROWS = 5  # an item's like rate starts from the mean, as if seen this many times


@dataclass(frozen=True)
class Stack:
    """Per-item counts of the training rows and the weights that combine the parts."""

    rated: np.ndarray  # [N] training rows (targets and history titles) that rated the item
    liked: np.ndarray  # [N] of them liked
    like_weights: np.ndarray  # [len(LIKE_FEATURES) + 1]: the last is the intercept
    exposure_weights: np.ndarray  # [len(EXPOSURE_FEATURES) + 1]
    new_item_weights: np.ndarray  # [len(NEW_ITEM_FEATURES) + 1]: titles outside the catalog
    # [len(NEW_EXPOSURE_FEATURES) + 1] and the catalog's words; None in bundles before 1.4, whose
    # new items all get the catalog's mean exposure
    new_exposure_weights: np.ndarray | None = None
    words: Words | None = None
    # [N, D]: co-like factors (schema 1.5), whose dot products are the cosines of the titles' like
    # residuals; None before 1.5 (the co-liked history is then 0)
    colike: np.ndarray | None = None

    ARRAYS = ("item_rated", "item_liked", "like_weights", "exposure_weights", "new_item_weights")
    FIELDS = ("rated", "liked", "like_weights", "exposure_weights", "new_item_weights")
    NEW_EXPOSURE_ARRAYS = ("new_exposure_weights", "word_list", "word_idf")
    COLIKE_ARRAY = "item_colike"

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_items: int) -> Stack | None:
        if "like_weights" not in arrays:
            return None
        has = [k in arrays for k in cls.NEW_EXPOSURE_ARRAYS]
        missing = [k for k in cls.ARRAYS if k not in arrays]
        if any(has) and not all(has):
            missing += [k for k, h in zip(cls.NEW_EXPOSURE_ARRAYS, has, strict=True) if not h]
        if missing:
            raise ValueError(f"stacked tables lack {missing}")
        rated, liked, like, exposure, new_item = (
            np.asarray(arrays[k], dtype=np.float64) for k in cls.ARRAYS
        )
        if len(like) == LIKE_FEATURES_BEFORE_1_5 + 1:  # before 1.5: the new parts weigh 0
            padding = np.zeros(len(LIKE_FEATURES) - LIKE_FEATURES_BEFORE_1_5)
            like = np.concatenate([like[:-1], padding, like[-1:]])
        stack = cls(rated, liked, like, exposure, new_item)
        if cls.COLIKE_ARRAY in arrays:
            colike = np.asarray(arrays[cls.COLIKE_ARRAY], dtype=np.float32)
            if colike.ndim != 2 or len(colike) != n_items:
                raise ValueError(
                    f"item_colike of shape {colike.shape} does not fit {n_items} titles"
                )
            stack = replace(stack, colike=colike)
        if all(has):
            weights = np.asarray(arrays["new_exposure_weights"], dtype=np.float64)
            if len(weights) != len(NEW_EXPOSURE_FEATURES) + 1:
                raise ValueError(f"new_exposure_weights of size {len(weights)} do not fit")
            words = Words.from_arrays(arrays["word_list"], arrays["word_idf"])
            stack = replace(stack, new_exposure_weights=weights, words=words)
        sizes = (
            len(stack.rated),
            len(stack.liked),
            len(stack.like_weights),
            len(stack.exposure_weights),
            len(stack.new_item_weights),
        )
        expected = (n_items, n_items, *(len(f) + 1 for f in FEATURES))
        if sizes != expected:
            raise ValueError(f"stacked tables of sizes {sizes} do not fit {n_items} titles")
        return stack

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {k: getattr(self, f) for k, f in zip(self.ARRAYS, self.FIELDS, strict=True)}
        if self.new_exposure_weights is not None and self.words is not None:
            arrays["new_exposure_weights"] = self.new_exposure_weights
            arrays.update(self.words.to_arrays())
        if self.colike is not None:
            arrays[self.COLIKE_ARRAY] = self.colike
        return arrays

    def rates(self, rows: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Each title's like rate in the training rows, shrunk to the mean over ``PRIOR_ROWS``
        (the mean itself off the catalog)."""
        rated = np.where(known, self.rated[rows], 0.0)
        liked = np.where(known, self.liked[rows], 0.0)
        return (liked + PRIOR_ROWS * self.prior) / (rated + PRIOR_ROWS)

    @property
    def prior(self) -> float:
        """The mean like rate of the training rows."""
        return float(self.liked.sum() / max(1.0, self.rated.sum()))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def liked_share(liked: int, rated: int) -> float:
    """The user's liked share of the history, smoothed (one liked and one not, added)."""
    return (liked + 1) / (rated + 2)


WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Words:
    """The catalog's word weights (inverse document frequency over the item texts, as
    scikit-learn's smoothed idf) for the word similarity of new items: ``similarity`` is the
    cosine of each item's TF-IDF vector (sublinear tf) with the mean of the liked history texts'
    unit vectors. Words of one catalog text only are not stored: they, and words of no catalog
    text, weigh ``rare``."""

    idf: dict[str, float]
    rare: float  # the weight of a word that at most one catalog text has

    LIMIT = 200_000  # words kept at most (the most common first)

    @classmethod
    def fit(cls, texts: Sequence[str]) -> Words:
        counts: dict[str, int] = {}
        for text in texts:
            for word in set(WORD.findall(text.lower())):
                counts[word] = counts.get(word, 0) + 1
        n = len(texts)
        common = sorted((w for w, c in counts.items() if c > 1), key=lambda w: (-counts[w], w))
        idf = {w: math.log((1 + n) / (1 + counts[w])) + 1 for w in common[: cls.LIMIT]}
        return cls(idf, math.log((1 + n) / 2) + 1)

    @classmethod
    def from_arrays(cls, words: np.ndarray, idf: np.ndarray) -> Words:
        weights = np.asarray(idf, dtype=np.float64)
        if len(words) + 1 != len(weights):
            raise ValueError(f"word_idf of size {len(weights)} does not fit {len(words)} words")
        return cls(
            dict(zip(words.tolist(), weights[:-1].tolist(), strict=True)), float(weights[-1])
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """``word_list`` and ``word_idf`` (one longer: the last is ``rare``)."""
        return {
            "word_list": np.array(list(self.idf), dtype=str),
            "word_idf": np.array([*self.idf.values(), self.rare]),
        }

    def vector(self, text: str) -> dict[str, float]:
        counts: dict[str, int] = {}
        for word in WORD.findall(text.lower()):
            counts[word] = counts.get(word, 0) + 1
        vector = {w: (1 + math.log(c)) * self.idf.get(w, self.rare) for w, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {w: v / norm for w, v in vector.items()}

    def similarity(self, liked: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """The cosine of each item text with the liked texts' mean (0 without liked texts)."""
        profile: dict[str, float] = {}
        for text in liked:
            for w, v in self.vector(text).items():
                profile[w] = profile.get(w, 0.0) + v
        norm = math.sqrt(sum(v * v for v in profile.values()))
        if not norm:
            return np.zeros(len(items))
        return np.array(
            [sum(v * profile.get(w, 0.0) for w, v in self.vector(t).items()) / norm for t in items]
        )


def history_similarity(liked: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine of each item's output row with the mean of the liked history titles' unit rows (the
    bias column left out): how much an item resembles what the user liked, in the model's own
    item space. 0 without liked titles."""
    if len(liked) == 0 or len(items) == 0:
        return np.zeros(len(items))

    def unit(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)[:, :-1]
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    profile = unit(liked).mean(0)
    return unit(items) @ (profile / max(float(np.linalg.norm(profile)), 1e-12))


def like_features(
    tables: CollaborativeTables,
    liked: Sequence[str],
    disliked: Sequence[str],
    items: Sequence[str],
    text: np.ndarray,
    similarity: np.ndarray | None = None,
) -> np.ndarray:
    """[len(items), len(LIKE_FEATURES)]: what the stack's like weights combine (``similarity``:
    ``history_similarity`` of the items, 0 where not given)."""
    stack = tables.stack
    assert stack is not None
    user = tables.user(liked, disliked)
    rows, known = tables._rows(items)
    share = liked_share(len(liked), len(liked) + len(disliked))
    # the history's like residuals: how much more the user liked each title than everybody did
    history_rows, history_known = tables._rows([*liked, *disliked])
    residuals = np.array([1.0] * len(liked) + [0.0] * len(disliked)) - stack.rates(
        history_rows, history_known
    )
    return np.column_stack(
        [
            np.asarray(text, dtype=np.float64),
            tables.like(user, items),
            np.full(len(items), logit(np.array(share))),
            logit(stack.rates(rows, known)),
            np.zeros(len(items)) if similarity is None else np.asarray(similarity, np.float64),
            np.full(len(items), residuals.sum() / (len(residuals) + 2)),
            _coliked(stack, rows, known, history_rows[history_known], residuals[history_known]),
        ]
    )


def _coliked(
    stack: Stack, rows: np.ndarray, known: np.ndarray, history: np.ndarray, residuals: np.ndarray
) -> np.ndarray:
    """Each item's co-liked history: the history's like residuals weighed by each history title's
    co-like cosine with the item (0 off the catalog, without factors or a catalog history)."""
    if stack.colike is None or len(history) == 0:
        return np.zeros(len(rows))
    cosine = stack.colike[rows].astype(np.float64) @ stack.colike[history].T.astype(np.float64)
    value = cosine @ residuals / (np.abs(cosine).sum(1) + 1.0)
    return np.where(known, value, 0.0)


def exposure_features(
    tables: CollaborativeTables, liked: Sequence[str], disliked: Sequence[str], items: Sequence[str]
) -> np.ndarray:
    """[len(items), len(EXPOSURE_FEATURES)]: what the stack's exposure weights combine."""
    stack = tables.stack
    assert stack is not None
    rows, known = tables._rows(items)
    exposure = tables.exposure(tables.user(liked, disliked), items)
    return np.column_stack([exposure, np.log1p(np.where(known, stack.rated[rows], 0.0))])


def new_exposure_features(
    tables: CollaborativeTables,
    liked: Sequence[str],
    items: Sequence[str],
    similarity: np.ndarray | None = None,
) -> np.ndarray:
    """[len(items), len(NEW_EXPOSURE_FEATURES)]: what a title outside the catalog is exposed by
    (schema 1.4 stacks): its ``history_similarity`` and its word similarity to the liked texts."""
    stack = tables.stack
    assert stack is not None and stack.words is not None
    return np.column_stack(
        [
            np.zeros(len(items)) if similarity is None else np.asarray(similarity, np.float64),
            stack.words.similarity(liked, items),
        ]
    )


NEW_ITEM_COLUMNS = [LIKE_FEATURES.index(f) for f in NEW_ITEM_FEATURES]


def combine(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (features @ weights[:-1] + weights[-1]).astype(np.float32)


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
    similarity: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The like logits (``text`` plus the tables' like terms) and the exposure logits (None
    without tables) of ``items`` for the user with this history."""
    if tables is None:
        return text, None
    if tables.stack is not None:
        features = like_features(tables, liked, disliked, items, text, similarity)
        like = combine(features, tables.stack.like_weights)
        new = combine(features[:, NEW_ITEM_COLUMNS], tables.stack.new_item_weights)
        known = tables._rows(items)[1]
        like = np.where(known, like, new)
        stack = tables.stack
        exposure = combine(
            exposure_features(tables, liked, disliked, items), stack.exposure_weights
        )
        if stack.new_exposure_weights is not None and not known.all():
            unknown = [t for t, k in zip(items, known, strict=True) if not k]
            fresh = combine(
                new_exposure_features(
                    tables, liked, unknown, None if similarity is None else similarity[~known]
                ),
                stack.new_exposure_weights,
            )
            exposure[~known] = fresh
        return like, exposure
    user = tables.user(liked, disliked)
    return text + tables.like(user, items), tables.exposure(user, items)


def rank_values(like: np.ndarray, exposure: np.ndarray | None) -> np.ndarray:
    """What candidates are ordered by: log P(watches) + log P(enjoys | watches)."""
    return log_sigmoid(like) + (log_sigmoid(exposure) if exposure is not None else 0.0)
