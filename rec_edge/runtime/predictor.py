"""TORCH-FREE encoder runtime: ``Predictor``, a bundle in and its graph's outputs out, with
onnxruntime + tokenizers + numpy only. Its tasks subclass it (``Classifier`` in
``runtime/classifier.py``, ``Ranker`` in ``runtime/ranker.py``) and ``Predictor.load`` returns the
bundle's.

Texts are rendered through the bundle's inference template exactly as in training, tokenized,
sorted by length and batched so that each batch is padded only to its own longest input.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from rec_edge._version import __version__
from rec_edge.bundle import MANIFEST_FILE, Bundle, load_bundle, verify_files
from rec_edge.data.templates import TemplateSet
from rec_edge.errors import BundleError, ConfigError
from rec_edge.runtime.outputs import check_texts
from rec_edge.runtime.runs import (
    MAX_RUN,
    SENTENCE,
    cached,
    fit_overhead,
    fixed_run_length,
    plan_runs,
    remember,
)
from rec_edge.runtime.session import SessionConfig, open_session
from rec_edge.runtime.tokenize import BundleTokenizer, pad_batch
from rec_edge.versions import machine

EMBEDDING_OUTPUT = "embedding"  # classify bundles since 2026-12 (convert.head_graph)
log = logging.getLogger("rec_edge")
TOKENIZER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TASKS: dict[str, type[Predictor]] = {}  # an encoder bundle's task -> its runtime (subclasses)


T = TypeVar("T")


def task_class(
    bundle: Bundle, registry: Mapping[str, type[T]], base: type[T], family: str
) -> type[T]:
    """The class of ``registry`` (a family's tasks) for ``bundle``'s task, which must be ``base``
    or below it: the one check behind ``Predictor.load`` and ``Generator.load``."""
    task = bundle.manifest.task
    runtime = registry.get(task)
    if runtime is None:
        raise BundleError(
            f"{bundle.path}: task {task!r} has no {family} runtime (known: {', '.join(registry)}). "
            "Is the bundle from a newer rec-edge?"
        )
    if not issubclass(runtime, base):
        family_base = "Predictor" if family == "encoder" else "Generator"
        raise ConfigError(
            f"{bundle.path} is a {task!r} bundle: load it with {runtime.__name__}.load "
            f"(or {family_base}.load, rec_edge.load)."
        )
    return runtime


class Predictor:
    """An encoder bundle: ``Predictor.load(path)`` (or ``rec_edge.load(path)`` for any bundle)
    returns its task's subclass. Safe to call from several threads at once."""

    task: ClassVar[str | None] = None  # the subclass's task (see __init_subclass__)

    def __new__(cls, bundle: Bundle, *args: Any, **options: Any) -> Predictor:
        """``Predictor(bundle, config)`` builds the bundle's task's subclass, as ``load`` does."""
        return super().__new__(cls._runtime(bundle))

    def __init__(self, bundle: Bundle, config: SessionConfig, *, run_length: int | None = None):
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
        self._render = self._renderer()
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
        if run_length is not None and run_length < 1:
            raise ConfigError(f"run_length={run_length} (must be >= 1, or None: planned)")
        self._run_length = run_length or fixed_run_length()  # None: each call planned
        self._overhead: float | None = None  # measured on first use (runtime.runs)
        self._measuring = threading.Lock()

    def __init_subclass__(cls, task: str | None = None, **options: Any) -> None:
        """``class Ranker(Predictor, task="rank")``: the runtime ``Predictor.load`` opens for
        that task's bundles."""
        super().__init_subclass__(**options)
        if task is not None:
            cls.task = task
            TASKS[task] = cls

    def _renderer(self) -> Callable[[str], str]:
        """How ``logits`` renders a text (the task's inference template; here: as it is)."""
        return str

    def _output_problems(self, width: Any) -> list[str]:
        """What is wrong with the graph's output of ``width`` values a row, for this task."""
        return []

    @classmethod
    def _open(
        cls,
        bundle: Bundle,
        config: SessionConfig,
        item_cache: int,
        catalog: bool,
        run_length: int | None,
    ) -> Predictor:
        """The runtime for ``bundle`` (``item_cache`` and ``catalog``: the rank task's)."""
        return cls(bundle, config, run_length=run_length)

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
        run_length: int | None = None,
    ) -> Predictor:
        """Load and check an encoder bundle (schema, files, sha256, graph inputs), open its
        session, and return its task's runtime: a ``Classifier`` or a ``Ranker`` (both
        Predictors). ``Classifier.load`` and ``Ranker.load`` refuse the other task's bundles.
        ``item_cache`` and ``catalog`` concern rank bundles' item index. ``run_length``: texts
        per session run; None cuts each call where it pays (see ``run_overhead``)."""
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
        runtime = cls._runtime(bundle)
        if not verify:
            return runtime._open(bundle, config, item_cache, catalog, run_length)
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
            predictor = runtime._open(bundle, config, item_cache, catalog, run_length)
        finally:
            checker.join()  # an altered file explains a load failure better than onnxruntime
            if failure:
                raise failure[0]
        return predictor

    @classmethod
    def _runtime(cls, bundle: Bundle) -> type[Predictor]:
        """The class that opens ``bundle``: its task's, which must be ``cls`` or below it."""
        return task_class(bundle, TASKS, cls, "encoder")

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
        problems += self._output_problems(self.session.get_outputs()[0].shape[-1])
        if problems:
            raise BundleError(
                f"Bundle {self.bundle.path}: " + "; ".join(problems) + ". Re-export it."
            )

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

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
        """The graph's output row of each text, float32, in the order of ``texts``: a classify
        bundle's raw label scores [len(texts), len(labels)]; a rank bundle's embedding and bias."""
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

    @property
    def run_length(self) -> int | None:
        """Texts per session run when fixed (``run_length=`` at load, or
        ``$REC_EDGE_RUN_LENGTH``); None: each call is cut where it pays (``run_overhead``)."""
        return self._run_length

    @property
    def run_overhead(self) -> float:
        """A session run's fixed cost in tokens' worth of work on this CPU, measured on first
        use (``runs.fit_overhead``) and kept per bundle and CPU in the user's cache folder. A
        call's texts, sorted by length, are cut into runs (at most ``batch_size``, at most
        ``runs.MAX_RUN``) with the fewest padded tokens plus this per run, so that a whole list
        in one call and any ``batch_size`` run near the best; the answers are the same bit for
        bit whatever the runs (batch invariance)."""
        if self._overhead is None:
            with self._measuring:
                if self._overhead is None:
                    self._overhead = self._measure_overhead()
        return self._overhead

    def _measure_overhead(self) -> float:
        key = "|".join(
            (
                self.manifest.files.get(self.manifest.model_file, str(self.bundle.path)),
                str(machine().get("cpu")),
                str(self.config.threads),
                str(self.config.spinning),
                __version__,
            )
        )
        overhead = cached(key)
        if overhead is None:
            ids = self.tokenizer.encode([" ".join([SENTENCE] * 8)])[0].ids

            def seconds(texts: int, tokens: int) -> float:
                size = max(2, min(tokens, len(ids)))
                row = np.array(ids[: size - 1] + ids[-1:], np.int64)
                feed = {
                    "input_ids": np.tile(row, (texts, 1)),
                    "attention_mask": np.ones((texts, size), np.int64),
                    "token_type_ids": np.zeros((texts, size), np.int64),
                }
                feed = {name: feed[name] for name in self.input_names}
                started = time.perf_counter()
                self._run(feed, [self.output_name])
                return time.perf_counter() - started

            seconds(1, 8)  # the arena, before any timing
            overhead = fit_overhead(seconds)
            remember(key, overhead)
        log.info("%s: a session run costs %.0f tokens' worth", self.bundle.path, overhead)
        return overhead

    def _runs(self, lengths: list[int], batch_size: int, run_length: int | None) -> list[Any]:
        """The texts' indices run by run: sorted by length, cut into runs of ``run_length``
        (or the Predictor's fixed one) if any, of ``batch_size`` on other providers than the
        CPU, else where the padded tokens plus the runs' overhead are least."""
        order = np.argsort(lengths, kind="stable")
        fixed = run_length or self._run_length
        if fixed is not None or self.provider != "CPUExecutionProvider":
            size = min(batch_size, fixed or batch_size)
            return [order[i : i + size] for i in range(0, len(order), size)]
        sorted_lengths = [lengths[i] for i in order]
        ends = plan_runs(sorted_lengths, min(batch_size, MAX_RUN), self.run_overhead)
        return [order[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def _rows(
        self,
        texts: Sequence[str],
        batch_size: int,
        outputs: list[str],
        run_length: int | None = None,
    ) -> list[np.ndarray]:
        """One row of each of ``outputs`` per text, in the order of ``texts``: length-sorted
        session runs (``_runs``), the rows scattered back."""
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
        if len(encodings) == 1:  # one text: no sorting or scattering needed
            batch = pad_batch(encodings, self.tokenizer.pad_id)
            return self._run({name: batch[name] for name in self.input_names}, outputs)
        out: list[np.ndarray] = []
        for index in self._runs([len(e.ids) for e in encodings], batch_size, run_length):
            batch = pad_batch([encodings[i] for i in index], self.tokenizer.pad_id)
            rows = self._run({name: batch[name] for name in self.input_names}, outputs)
            if not out:
                out = [np.empty((len(items), r.shape[-1]), dtype=np.float32) for r in rows]
            for whole, part in zip(out, rows, strict=True):
                whole[index] = part
        return out
