"""TORCH-FREE served models: a bundle under a name, its Predictor, its batcher, and reloads that
swap a checked and warmed Predictor in without failing a request in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.config import GenerationConfig, ServeConfig
from rec_edge.errors import BundleError
from rec_edge.runtime import Generator, Predictor, load
from rec_edge.runtime.batching import SLOTS
from rec_edge.runtime.outputs import softmax
from rec_edge.runtime.requests import RankRequest
from rec_edge.runtime.runs import RUN_LENGTHS, calibration_texts, fastest
from rec_edge.serve.batcher import MicroBatcher

# Texts of a few lengths: the first runs size onnxruntime's arena before any client waits on it.
WARM_TEXTS = ["warm up", "a longer text to warm up the session with a few more tokens " * 4]
SESSION_BATCHES = RUN_LENGTHS  # the session-run lengths tried at load on the CPU (runtime.runs)


def _texts(predictor: Any, size: int) -> list[str]:
    """Texts of 4 to 32 words (the inputs of classify runs)."""
    return calibration_texts(size)


def _rank_requests(predictor: Any, size: int) -> list[RankRequest]:
    """Rank requests of 10 liked titles and 20 candidates from the bundle's catalog."""
    titles = predictor.catalog or WARM_TEXTS
    return [
        RankRequest(
            [titles[(i + j) % len(titles)] for j in range(10)],
            [],
            [titles[(3 * i + j) % len(titles)] for j in range(20)],
            10,
        )
        for i in range(size)
    ]


def _classify(predictor: Any, texts: list[Any], size: int) -> Sequence[Any]:
    return LabelledRows(softmax(predictor.logits(texts, size)), list(predictor.labels))


def _rank(predictor: Any, requests: list[Any], size: int) -> Sequence[Any]:
    return predictor.rank_batch(requests, size)


def _warm_generate(predictor: Any) -> None:
    predictor.generate(predictor.prompt(WARM_TEXTS[0]), GenerationConfig(max_new_tokens=2))


@dataclass(frozen=True)
class ServedTask:
    """How the server drives one task's bundles: where they answer, what one micro-batched run
    does with the gathered inputs, and the inputs that warm and calibrate it (a few of mixed
    lengths, as a gathered batch holds). A task without ``run`` answers outside the batcher."""

    route: str  # {name}: the model's name
    inputs: Callable[[Any, int], list[Any]]
    run: Callable[[Any, list[Any], int], Sequence[Any]] | None
    calibrate: int = 32  # the most inputs a calibration (and warm-up) batch holds
    runtime_measures: bool = False  # the Predictor cuts a gathered batch into runs itself
    warm: Callable[[Any], None] | None = None  # instead of a run of the inputs


SERVED_TASKS = {  # a bundle's task -> how it is served: the one place serving branches on it
    "classify": ServedTask("/v1/models/{name}/predict", _texts, _classify, runtime_measures=True),
    "rank": ServedTask("/v1/models/{name}/rank", _rank_requests, _rank, calibrate=8),
    "generate": ServedTask("/v1/chat/completions", _texts, None, warm=_warm_generate),
}


def served_task(predictor: Predictor | Generator) -> ServedTask:
    task = predictor.manifest.task
    if task not in SERVED_TASKS:
        raise BundleError(
            f"{predictor.bundle.path}: rec-edge serve does not serve {task!r} bundles "
            f"(it serves {', '.join(SERVED_TASKS)})"
        )
    return SERVED_TASKS[task]


def calibration_batch(predictor: Predictor | Generator, size: int) -> list[Any]:
    """A gathered batch as the server sees one for ``predictor``'s task: texts of 4 to 32 words,
    or rank requests of 10 liked titles and 20 candidates from the bundle's catalog."""
    return served_task(predictor).inputs(predictor, size)


def load_predictor(path: str | Path, config: ServeConfig) -> Predictor | Generator:
    """Load and check a bundle (manifest, sha256 of its files), then warm it up: a few runs of
    mixed lengths size onnxruntime's arena before any client waits on it."""
    predictor = load(
        path,
        config.provider,
        config.threads,
        spinning=config.spinning,
        run_length=config.session_batch,  # None: the runtime plans each batch's runs
    )
    served = served_task(predictor)
    if served.warm is not None:
        served.warm(predictor)
        return predictor
    assert served.run is not None
    served.run(predictor, served.inputs(predictor, 2), 2)
    if not isinstance(predictor, Generator):  # a decoder runs one text a run: no lengths to warm
        size = min(config.max_batch, served.calibrate)
        served.run(predictor, served.inputs(predictor, size), size)
    return predictor


def session_batch(predictor: Predictor | Generator, config: ServeConfig, repeats: int = 3) -> int:
    """How many inputs a session run takes: ``config.session_batch`` if given; on other providers
    than the CPU, ``max_batch``; for texts on the CPU, ``max_batch`` too: the Predictor cuts each
    gathered batch into the runs that pay (``runtime.runs.plan_runs``); for rank requests, of
    SESSION_BATCHES up to ``max_batch``, the one that runs a calibration batch of requests
    fastest on this machine (``runtime.runs.fastest``)."""
    if config.session_batch is not None:
        return config.session_batch
    served = served_task(predictor)
    if isinstance(predictor, Generator) or served.run is None:  # each text its own run
        return 1
    if not config.on_cpu:
        return config.max_batch
    if served.runtime_measures and isinstance(predictor, Predictor):  # it plans its own runs
        return min(predictor.run_length or config.max_batch, config.max_batch)
    items = served.inputs(predictor, min(config.max_batch, served.calibrate))
    run = served.run
    return fastest(lambda batch, size: run(predictor, list(batch), size), items, repeats=repeats)


# the manifest's source fields that may hold this machine's paths: shown with --show-paths only
PATH_KEYS = ("run", "model", "export_config", "run_dir")


@dataclass(frozen=True)
class LabelledRows(Sequence[Any]):
    """A classify run's probabilities with the labels of the bundle that computed them, so that
    an answer never pairs a reloaded bundle's labels with the old one's scores (the batcher
    slices it per request)."""

    probabilities: np.ndarray
    labels: list[str]

    def __len__(self) -> int:
        return len(self.probabilities)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return LabelledRows(self.probabilities[index], self.labels)
        return self.probabilities[index]


class ServedModel:
    """One bundle under one name. Its batcher reads ``self.predictor`` at the start of each run,
    so a reload swaps the Predictor between two runs."""

    def __init__(self, name: str, path: str, predictor: Predictor | Generator, config: ServeConfig):
        self.name = name
        self.path = path
        self.config = config
        self.predictor = predictor
        self.session_batch = session_batch(predictor, config)
        self.loaded_at = time.time()
        self.executor = ThreadPoolExecutor(config.runs, thread_name_prefix=f"rec-edge-{name}")
        # a decoder's answers: as many written at once as its Generator decodes together
        self.writers = ThreadPoolExecutor(
            SLOTS if isinstance(predictor, Generator) else 1,
            thread_name_prefix=f"rec-edge-{name}-writer",
        )
        self.batcher: MicroBatcher | None = None
        self._reloading = asyncio.Lock()

    @property
    def task(self) -> str:
        return self.predictor.manifest.task

    @property
    def sha256(self) -> str:
        manifest = self.predictor.manifest
        return manifest.files.get(manifest.model_file, "")

    def start(self, observe: Any = None) -> None:
        self.batcher = MicroBatcher(
            self._run,
            executor=self.executor,
            max_batch=self.config.max_batch,
            max_wait_s=self.config.max_wait_ms / 1000,
            max_queue=self.config.max_queue,
            max_queue_s=(self.config.max_queue_ms or float("inf")) / 1000,
            concurrency=self.config.runs,
            observe=observe,
        )
        self.batcher.start()

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
        self.executor.shutdown(wait=True)
        self.writers.shutdown(wait=True)

    def _run(self, items: list[Any]) -> Sequence[Any]:
        """One session run for the items of several requests (in the executor thread)."""
        # one Predictor (and its run length) for the whole run, even across a reload
        predictor, size = self.predictor, self.session_batch
        run = served_task(predictor).run
        assert run is not None, "the batcher runs only the tasks with a run"
        return run(predictor, items, size)

    def describe(self) -> dict[str, Any]:
        manifest = self.predictor.manifest
        return {
            "name": self.name,
            "task": manifest.task,
            "labels": list(manifest.labels),
            "recipe": manifest.recipe,
            "source": (
                manifest.source
                if self.config.show_paths
                else {k: v for k, v in manifest.source.items() if k not in PATH_KEYS}
            ),
            "model_sha256": self.sha256,
            "session_batch": self.session_batch,
            **({"path": str(self.path)} if self.config.show_paths else {}),
            "loaded_at": self.loaded_at,
            "endpoint": self.endpoint,
        }

    @property
    def endpoint(self) -> str:
        """Where this model answers: its task's route (a generate bundle: OpenAI's chat)."""
        return served_task(self.predictor).route.format(name=self.name)

    async def reload(self) -> dict[str, Any]:
        """Load the bundle again from its path, check and warm it, then swap it in. A bad bundle
        raises BundleError and the old one keeps serving."""
        async with self._reloading:
            previous = self.sha256
            predictor = await asyncio.to_thread(load_predictor, self.path, self.config)
            if predictor.manifest.task != self.task:
                raise BundleError(
                    f"{self.path} is now a {predictor.manifest.task!r} bundle; {self.name!r} "
                    f"serves {self.task!r}: serve it under a new name instead"
                )
            size = await asyncio.to_thread(session_batch, predictor, self.config)
            self.predictor, self.session_batch = predictor, size
            self.loaded_at = time.time()
            return {"name": self.name, "model_sha256": self.sha256, "previous_sha256": previous}
