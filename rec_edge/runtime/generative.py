"""TORCH-FREE: the tasks of a decoder bundle besides writing: a ``GenerativeClassifier`` scores
each label's answer words (less the label's prior where the bundle is calibrated), a
``GenerativeRanker`` answers TALLRec's Yes/No question for each
candidate (stacked with the run's collaborative tables where the bundle has them). Both are
``Generator``s (``Generator.load`` opens a bundle as its task's class)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rec_edge.bundle import MANIFEST_FILE, Bundle
from rec_edge.data.prompts import rank_history
from rec_edge.errors import BundleError
from rec_edge.recommend.tables import LIKE_FEATURES, CollaborativeTables, add_tables
from rec_edge.runtime.generator import CANDIDATES_A_RUN, Generator
from rec_edge.runtime.outputs import (
    Prediction,
    check_history,
    check_texts,
    label_predictions,
    sigmoid,
    softmax,
)
from rec_edge.runtime.ranker import Ranked, ranked, read_item_index
from rec_edge.runtime.requests import RankRequest
from rec_edge.runtime.session import SessionConfig

# Inputs that say nothing: what a model answers to them is its bias toward each label (contextual
# calibration, Zhao et al. 2021, "Calibrate Before Use"); their mean probability is the prior
CONTENT_FREE = ("N/A", "", "[MASK]")


class GenerativeClassifier(Generator, task="classify"):
    """A classify decoder bundle: each label's words scored as the answer to the bundle's
    instruction (``predict``, ``predict_proba``, ``logits``, ``predictions``, as a
    ``Classifier``), the prompt's cache shared by the options; it also writes. A calibrated
    bundle (``decoder.label_prior``, chosen at export) subtracts each label's log-prior: an
    untuned model's taste for some label words (one intent of 77 for a third of the texts)
    then no longer decides the answer."""

    def __init__(self, bundle: Bundle, config: SessionConfig):
        super().__init__(bundle, config)
        words = self.spec.label_words or {}
        missing = [label for label in self.labels if not words.get(label)]
        if missing or not self.labels:
            raise BundleError(
                f"{bundle.path / MANIFEST_FILE}: a classify bundle names each label's answer "
                f"words (decoder.label_words); {missing or 'no labels'} have none. Re-export it."
            )
        self.words = words
        prior = self.spec.label_prior
        if prior is not None and len(prior) != len(self.labels):
            raise BundleError(
                f"{bundle.path / MANIFEST_FILE}: decoder.label_prior has {len(prior)} values for "
                f"{len(self.labels)} labels. Re-export the bundle."
            )
        self.prior = None if prior is None else np.array(prior, np.float64)

    def logits(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Each label's log-likelihood as the answer to each text, less its log-prior where the
        bundle has one, float32 [texts, labels] (their softmax is ``predict_proba``).
        ``batch_size`` is accepted for the Predictor's signature: each text is one run."""
        scores = self.answer_logprobs(check_texts(texts))
        return (scores if self.prior is None else scores - self.prior).astype(np.float32)

    def answer_logprobs(self, texts: Sequence[str]) -> np.ndarray:
        """log P(label's words | text's prompt), uncalibrated, float64 [texts, labels]."""
        words = self._label_words()
        rows = [self.option_logprobs(self.prompt(t), words) for t in texts]
        return np.stack(rows) if rows else np.zeros((0, len(words)))

    def content_free_prior(self) -> np.ndarray:
        """log of each label's mean probability over the ``CONTENT_FREE`` inputs, float64
        [labels] (normalized over the labels): what the export stores as the label prior."""
        probabilities = softmax(self.answer_logprobs(CONTENT_FREE))
        return np.log(probabilities.mean(axis=0))

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Each text's probability of each label, float32 [texts, labels]:
        the label words' likelihoods as answers, normalized over the labels."""
        return softmax(self.logits(texts))

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list[Prediction]:
        """One Prediction (label, its probability, every label's probability) per text."""
        return self.predictions(self.logits(texts))

    def predictions(self, logits: np.ndarray) -> list[Prediction]:
        """One Prediction per row of ``logits`` (as ``Predictor.predictions``)."""
        return label_predictions(self.labels, logits)

    def _label_words(self) -> list[str]:
        return [self.words[label] for label in self.labels]


class GenerativeRanker(Generator, task="rank"):
    """A rank decoder bundle (TALLRec: "Will the user enjoy X? Answer Yes or No."): ``rank``,
    ``rank_batch`` and ``score`` as a ``Ranker``, by P(yes) of each candidate after the user's
    history (its cache shared by the candidates); it also writes."""

    def __init__(self, bundle: Bundle, config: SessionConfig):
        super().__init__(bundle, config)
        if not (self.spec.rank_history and self.spec.rank_candidate):
            raise BundleError(
                f"{bundle.path / MANIFEST_FILE}: a rank bundle holds its question "
                "(decoder.rank_history, decoder.rank_candidate). Re-export it."
            )
        self.history_template, self.candidate_template = (
            self.spec.rank_history,
            self.spec.rank_candidate,
        )
        self.collaborative: CollaborativeTables | None = None  # the run's tables and stack
        if self.manifest.items_file:
            path = bundle.path / self.manifest.items_file
            self.collaborative = read_item_index(path, catalog=False)[1]

    @property
    def catalog(self) -> list[str]:
        """The titles of the run's collaborative tables (none without them)."""
        return list(self.collaborative.index) if self.collaborative else []

    def rank_prompt(self, liked: Sequence[str], disliked: Sequence[str]) -> tuple[str, str]:
        """The prompt up to a candidate's title, and the template of the rest (``{candidate}``'s
        part of the question, then the chat format up to the answer)."""
        spec = self.spec
        history = rank_history(liked, disliked, spec.instruction, self.history_template)
        return spec.prompt_prefix + history, self.candidate_template + spec.prompt_suffix

    def rank_logits(
        self, history: Mapping[str, Sequence[str]], candidates: Sequence[str]
    ) -> np.ndarray:
        """log P(yes) - log P(no) at the answer's first token for each candidate,
        float32, in the order given. The user's history runs once; the candidates read its
        cache, ``CANDIDATES_A_RUN`` a run, each padded behind its own tokens only (a
        candidate's score does not depend on the others)."""
        liked, disliked = check_history(history)
        items = check_texts(candidates)
        head, tail = self.rank_prompt(liked, disliked)
        yes, no = (self.encode(word)[0] for word in self.spec.rank_answers or ("Yes", "No"))
        if not items:
            return np.zeros(0, np.float32)
        rests = [self.encode(tail.format(candidate=item)) for item in items]
        # a history too long loses its oldest titles, never the question's start
        ids = self._prompt_ids(head, max(len(r) for r in rests) + 1, keep="end")
        _, past = self._prompt_run(ids)  # from the end of the prompt frame's cache
        out = np.empty(len(items), np.float32)
        for start in range(0, len(items), CANDIDATES_A_RUN):
            chunk = rests[start : start + CANDIDATES_A_RUN]
            width = max(len(r) for r in chunk)
            padded = np.zeros((len(chunk), width), np.int64)
            mask = np.zeros((len(chunk), len(ids) + width), np.int64)
            mask[:, : len(ids)] = 1
            for row, rest in enumerate(chunk):
                padded[row, : len(rest)] = rest
                mask[row, len(ids) : len(ids) + len(rest)] = 1
            shared = [np.repeat(p, len(chunk), axis=0) for p in past]
            logits, _ = self._run(padded, mask, shared)
            last = logits[np.arange(len(chunk)), [len(r) - 1 for r in chunk]].astype(np.float64)
            out[start : start + len(chunk)] = last[:, yes] - last[:, no]
        return out

    def score(self, history: Mapping[str, Sequence[str]], candidates: Sequence[str]) -> np.ndarray:
        """P(the user enjoys each candidate), float32, in the order given (``Predictor.score``'s
        meaning): P(yes) / (P(yes) + P(no)), or with the run's collaborative tables their stack
        over its log-odds (``recommend.tables``)."""
        return sigmoid(self._logits(history, candidates)[0]).astype(np.float32)

    def rank(
        self, history: Mapping[str, Sequence[str]], candidates: Sequence[str], k: int | None = None
    ) -> list[Ranked]:
        """Candidates best first by P(yes), or with the run's tables by P(watches) x
        P(enjoys | watches); the top ``k`` (ties in the order given)."""
        items = check_texts(candidates)
        return ranked(items, *self._logits(history, items), k)

    def _logits(
        self, history: Mapping[str, Sequence[str]], candidates: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The like logits of ``candidates`` and, with collaborative tables, their exposure.
        The model runs only where the stack reads its score: not where the stack gave the text
        no weight and every candidate is in the catalog (the answer is the same, at no cost)."""
        items = check_texts(candidates)
        liked, disliked = check_history(history)
        if self._reads_text(items):
            text = self.rank_logits(history, items)
        else:
            text = np.zeros(len(items), np.float32)
        return add_tables(self.collaborative, liked, disliked, items, text)

    def _reads_text(self, items: Sequence[str]) -> bool:
        tables = self.collaborative
        if tables is None or tables.stack is None:
            return True
        text = tables.stack.like_weights[LIKE_FEATURES.index("text")]
        return bool(text != 0.0) or any(item not in tables.index for item in items)

    def rank_batch(
        self, requests: Sequence[RankRequest], batch_size: int | None = None
    ) -> list[list[Ranked]]:
        """Each request's ``rank`` (servers, batch jobs); ``batch_size`` is the Predictor's
        signature: each user is one run of their history and runs of their candidates."""
        return [self.rank(r.history, r.candidates, r.k) for r in requests]
