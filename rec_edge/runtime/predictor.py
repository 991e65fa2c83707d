"""The Predictor: a bundle in, labels out, with onnxruntime + tokenizers + numpy only.

Texts are rendered through the bundle's inference template exactly as in training, tokenized,
sorted by length and batched so that each batch is padded only to its own longest input.
"""

from __future__ import annotations

import logging
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bundle import MANIFEST_FILE, Bundle, load_bundle, verify_files
from rec_edge.data.templates import TemplateSet
from rec_edge.errors import BundleError, ConfigError
from rec_edge.runtime.collab import (
    CollaborativeTables,
    add_tables,
    history_similarity,
    rank_values,
)
from rec_edge.runtime.outputs import (
    Prediction,
    check_history,
    check_texts,
    label_predictions,
    sigmoid,
    softmax,
)
from rec_edge.runtime.requests import (  # noqa: F401  # their home before; callers import them here
    RANK_FIELDS,
    RankRequest,
    parse_rank_request,
    rank_request,
    rank_request_problems,
)
from rec_edge.runtime.session import SessionConfig, open_session
from rec_edge.runtime.tokenize import BundleTokenizer, pad_batch

EMBEDDING_OUTPUT = "embedding"  # classify bundles since 2026-12 (convert.head_graph)
log = logging.getLogger("rec_edge")
TOKENIZER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
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


def _read_item_index(
    path: Path, catalog: bool
) -> tuple[dict[str, np.ndarray], CollaborativeTables | None, dict[str, str]]:
    """A rank bundle's item index: item text -> output row, the collaborative tables if any, and
    title -> item text where an item template made the texts (``--item-template``)."""
    try:
        with np.load(path, allow_pickle=False) as index:
            titles = index["titles"].tolist()
            vectors = index["vectors"]
            if vectors.ndim != 2 or len(vectors) != len(titles):
                raise ValueError(f"{len(titles)} titles but vectors of shape {vectors.shape}")
            tables = CollaborativeTables.from_arrays(index)
            rows = dict(zip(titles, vectors, strict=True)) if catalog else {}
            aliases = {}
            if "alias_names" in index:
                names, texts = index["alias_names"].tolist(), index["alias_texts"].tolist()
                aliases = dict(zip(names, texts, strict=True))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise BundleError(
            f"{path} is not a usable item index ({type(error).__name__}: {error}). Re-export the bundle."
        ) from None
    return rows, tables, aliases


class Predictor:
    """An encoder bundle (classify or rank): ``Predictor.load(path)``, or ``rec_edge.load(path)``
    for any bundle. Safe to call from several threads at once."""

    def __init__(
        self, bundle: Bundle, config: SessionConfig, item_cache: int = 10_000, catalog: bool = True
    ):
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.config = config
        try:
            self.templates = TemplateSet.from_dict(self.manifest.templates)
        except (ConfigError, KeyError, TypeError, AttributeError) as error:
            raise BundleError(
                f"{bundle.path / MANIFEST_FILE}: field 'templates' is unusable ({error}). "
                "Re-export the bundle."
            ) from None
        if self.manifest.task == "rank":  # logits() encodes texts as they are; rank() renders
            self._render: Callable[[str], str] = str
            self._user_text = self.templates.preference_renderer()
        else:
            self._render = self.templates.renderer(self.manifest.labels)
        self.tokenizer = BundleTokenizer(bundle.tokenizer_path, self.manifest.max_length)
        self.session = open_session(bundle.model_path, config)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name
        self._check_graph()
        if self.manifest.recipe.get("kind") == "dynamic":
            log.warning(
                "%s was quantized with dynamic int8 (%s): a text's scores depend on what it is "
                "batched with. Re-export it with rec-edge export (calibrated int8) for scores that "
                "do not.",
                bundle.path,
                self.manifest.recipe.get("name"),
            )
        self.provider = self.session.get_providers()[0]
        self._io_binding = self.provider == "CUDAExecutionProvider"
        self._lock = threading.Lock()
        self.truncated = 0  # inputs cut to max_length since load
        self.item_cache_size = item_cache
        self._items: dict[str, np.ndarray] = {}  # rank: item text -> output row, oldest first
        self._catalog: dict[str, np.ndarray] = {}  # rank: the item index's vectors (catalog)
        self.collaborative: CollaborativeTables | None = None  # rank: the run's tables, if any
        self._aliases: dict[str, str] = {}  # rank: title -> the item text (an item template)
        if self.manifest.items_file:
            self._catalog, self.collaborative, self._aliases = _read_item_index(
                bundle.path / self.manifest.items_file, catalog
            )

    @classmethod
    def load(
        cls,
        path: str | Path,
        provider: str = "cpu",
        threads: int | None = None,
        *,
        inter_op_threads: int | None = None,
        graph_optimization_level: str = "all",
        enable_mem_arena: bool = True,
        fallback: bool = False,
        spinning: bool = True,
        verify: bool = True,
        item_cache: int = 10_000,
        catalog: bool = True,
    ) -> Predictor:
        """Load and check a bundle (schema, files, sha256, graph inputs) and open its session."""
        config = SessionConfig(
            provider,
            threads,
            inter_op_threads,
            graph_optimization_level,
            enable_mem_arena,
            fallback,
            spinning,
        )
        bundle = load_bundle(path, verify=False)
        if bundle.manifest.family == "decoder":
            raise BundleError(
                f"{path} is a decoder bundle (a language model that answers in words): load it "
                "with rec_edge.load (or rec_edge.Generator.load)."
            )
        if not verify:
            return cls(bundle, config, item_cache, catalog)
        # Hash the two files the runtime reads while onnxruntime builds the session (both release
        # the GIL); other files (model card, --keep-fp32 copy) are checked for presence only.
        used = (bundle.manifest.model_file, bundle.manifest.tokenizer_file) + (
            (bundle.manifest.items_file,) if bundle.manifest.items_file else ()
        )
        failure: list[BundleError] = []

        def check() -> None:
            try:
                verify_files(bundle, used)
            except BundleError as error:
                failure.append(error)
            except OSError as error:  # a file unreadable while it is hashed
                failure.append(BundleError(f"{bundle.path}: cannot be verified ({error})"))

        checker = threading.Thread(target=check, name="rec-edge-verify")
        checker.start()
        try:
            predictor = cls(bundle, config, item_cache, catalog)
        finally:
            checker.join()  # an altered file explains a load failure better than onnxruntime
            if failure:
                raise failure[0]
        return predictor

    def _check_graph(self) -> None:
        problems = []
        unknown = [n for n in self.input_names if n not in TOKENIZER_INPUTS]
        if unknown:
            problems.append(
                f"the graph expects inputs {unknown} that the tokenizer does not give (it gives {list(TOKENIZER_INPUTS)})"
            )
        if self.input_names != self.manifest.inputs:
            problems.append(
                f"the graph's inputs {self.input_names} differ from the manifest's {self.manifest.inputs}"
            )
        width = self.session.get_outputs()[0].shape[-1]
        if (
            self.manifest.task == "classify"
            and isinstance(width, int)
            and width != len(self.manifest.labels)
        ):
            problems.append(
                f"the graph gives {width} scores for {len(self.manifest.labels)} labels"
            )
        dim = self.manifest.source.get("head", {}).get("dim")
        rank = self.manifest.task == "rank"
        if rank and isinstance(width, int) and isinstance(dim, int) and width != dim + 1:
            problems.append(
                f"the graph gives rows of {width} values, the two-tower head {dim} + a bias"
            )
        if problems:
            raise BundleError(
                f"Bundle {self.bundle.path}: " + "; ".join(problems) + ". Re-export it."
            )

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    @property
    def catalog(self) -> list[str]:
        """Rank bundles: the titles of the item index (empty when loaded with catalog=False)."""
        return list(self._catalog)

    def render(self, texts: Sequence[str]) -> list[str]:
        """The texts as the model sees them: through the bundle's inference template."""
        return [self._render(t) for t in texts]

    def _run(self, feed: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        if not self._io_binding:
            return list(self.session.run(outputs, feed))
        binding = self.session.io_binding()  # CUDA: inputs copied once, no per-run host syncs
        for name, array in feed.items():
            binding.bind_cpu_input(name, array)
        for output in outputs:
            binding.bind_output(output)
        self.session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw scores, float32 [len(texts), len(labels)], in the order of ``texts``; for a rank
        bundle each row is an embedding and a bias (see ``pair_scores``), the texts as given."""
        return self._rows(texts, batch_size, [self.output_name])[0]

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Each text's sentence vector, float32 [len(texts), hidden], unit length: the pooled
        vector the label head reads (a tuned bundle's vectors are what a vector index wants).
        The same whatever the batch: a text's vector alone equals its vector among others."""
        self._require_embedding()
        return self._rows(texts, batch_size, [EMBEDDING_OUTPUT])[0]

    def logits_and_embeddings(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """``logits`` and ``embed`` from the same session runs (one pass over the texts)."""
        self._require_embedding()
        logits, vectors = self._rows(texts, batch_size, [self.output_name, EMBEDDING_OUTPUT])
        return logits, vectors

    @property
    def embedding_size(self) -> int | None:
        """The sentence vector's dimensions (``embed``); None: the bundle gives none."""
        shapes = {o.name: o.shape for o in self.session.get_outputs()}
        shape = shapes.get(EMBEDDING_OUTPUT)
        return int(shape[-1]) if shape and isinstance(shape[-1], int) else None

    def _require_embedding(self) -> None:
        if self.embedding_size is None:
            raise BundleError(
                f"Bundle {self.bundle.path} has no '{EMBEDDING_OUTPUT}' output (exported before "
                "embeddings, or not a classify bundle with the description head): export the "
                "run again with this version of rec-edge."
            )

    def _rows(self, texts: Sequence[str], batch_size: int, outputs: list[str]) -> list[np.ndarray]:
        """One row of each of ``outputs`` per text, in the order of ``texts``: length-sorted
        session runs of ``batch_size``, the rows scattered back."""
        items = check_texts(texts)
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} (must be >= 1)")
        if not items:
            shapes = {o.name: o.shape for o in self.session.get_outputs()}
            widths = [shapes[name][-1] for name in outputs]
            return [np.zeros((0, w if isinstance(w, int) else 0), np.float32) for w in widths]
        encodings = self.tokenizer.encode(self.render(items))
        truncated = sum(1 for e in encodings if e.overflowing)
        if truncated:
            with self._lock:
                self.truncated += truncated
            log.info(
                "%d of %d inputs were truncated to %d tokens",
                truncated,
                len(items),
                self.manifest.max_length,
            )
        if len(encodings) <= batch_size:  # one batch: no sorting or scattering needed
            batch = pad_batch(encodings, self.tokenizer.pad_id)
            return self._run({name: batch[name] for name in self.input_names}, outputs)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out: list[np.ndarray] = []
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = pad_batch([encodings[i] for i in index], self.tokenizer.pad_id)
            rows = self._run({name: batch[name] for name in self.input_names}, outputs)
            if not out:
                out = [np.empty((len(items), r.shape[-1]), dtype=np.float32) for r in rows]
            for whole, part in zip(out, rows, strict=True):
                whole[index] = part
        return out

    def _require_classify(self) -> None:
        if self.manifest.task == "rank":
            raise ConfigError(
                f"Bundle {self.bundle.path} is a 'rank' bundle: its outputs are embeddings, not "
                "label scores. Use rank(history, candidates) or score(history, candidates)."
            )

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Probabilities, float32 [len(texts), len(labels)], columns in the order of ``labels``."""
        self._require_classify()
        return softmax(self.logits(texts, batch_size))

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        """One Prediction (label, its probability, every label's probability) per text."""
        self._require_classify()
        return self.predictions(self.logits(texts, batch_size))

    def predictions(self, logits: np.ndarray) -> list[Prediction]:
        """One Prediction per row of ``logits`` (from ``logits``: servers batch the texts of
        several requests into one run and answer each from its own rows)."""
        self._require_classify()
        return label_predictions(self.manifest.labels, logits)

    def score(self, history: Mapping[str, Sequence[str]], candidates: Sequence[str]) -> np.ndarray:
        """Rank bundles: P(the user enjoys each candidate | they watch it), float32, in the order
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
        if self.manifest.task != "rank":
            raise ConfigError(
                f"Bundle {self.bundle.path} is a {self.manifest.task!r} bundle; rank() needs a 'rank' one."
            )
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
        """Rank bundles: the output rows of item texts, from the item index, the cache, or
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
        """Candidates best first (rank bundles): by P(picks and enjoys) = P(watches) x P(enjoys |
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
