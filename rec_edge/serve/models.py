"""TORCH-FREE served models: a bundle under a name, its Predictor, its batcher, and reloads that
swap a checked and warmed Predictor in without failing a request in flight."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.config import GenerationConfig, ServeConfig
from rec_edge.errors import BundleError
from rec_edge.runtime import Generator, Predictor, load
from rec_edge.runtime.predictor import RankRequest, softmax
from rec_edge.serve.batcher import MicroBatcher

# Texts of a few lengths: the first runs size onnxruntime's arena before any client waits on it.
WARM_TEXTS = ["warm up", "a longer text to warm up the session with a few more tokens " * 4]
# The session-run lengths tried at load on the CPU (benchmarks/RESULTS.md: of these, runs of 4 were
# the fastest per text on an AVX2 EPYC, runs of 1 on an AVX-512 VNNI one)
SESSION_BATCHES = (1, 2, 4, 8, 16, 32)
SENTENCE = (
    "please tell me why the payment I made yesterday to my landlord has not arrived yet and what "
    "I should do about the card that was declined at the shop this morning"
)  # 32 words


def load_predictor(path: str | Path, config: ServeConfig) -> Predictor | Generator:
    """Load and check a bundle (manifest, sha256 of its files), then warm it up."""
    predictor = load(path, config.provider, config.threads, spinning=config.spinning)
    task = predictor.manifest.task
    if isinstance(predictor, Generator) and task == "generate":
        predictor.generate(predictor.prompt(WARM_TEXTS[0]), GenerationConfig(max_new_tokens=2))
    elif task == "rank":
        titles = predictor.catalog[:20] or WARM_TEXTS
        predictor.rank_batch([RankRequest(titles[:2], [], titles, 10)])
    elif isinstance(predictor, Generator):  # one run a text: no batch sizes to warm
        predictor.logits(WARM_TEXTS)
    else:
        predictor.logits(WARM_TEXTS)
        predictor.logits(WARM_TEXTS * (config.max_batch // 2 or 1), batch_size=config.max_batch)
    return predictor


def calibration_batch(predictor: Predictor | Generator, size: int) -> list[Any]:
    """A gathered batch as the server sees one, of inputs of mixed lengths: texts of 4 to 32
    words, or rank requests of 10 liked titles and 20 candidates from the bundle's catalog."""
    if predictor.manifest.task != "rank":
        words = SENTENCE.split()
        return [" ".join(words[: 4 + (7 * i) % 29]) for i in range(size)]
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


def session_batch(predictor: Predictor | Generator, config: ServeConfig, repeats: int = 3) -> int:
    """How many inputs a session run takes: ``config.session_batch`` if given; on other providers
    than the CPU, ``max_batch``; on the CPU, of SESSION_BATCHES up to ``max_batch``, the one that
    runs a calibration batch fastest on this machine (``repeats`` interleaved timings, medians).
    On a CPU a padded batch is often slower per text than short runs, by a factor that depends on
    the CPU, so it is measured rather than assumed."""
    if config.session_batch is not None:
        return config.session_batch
    if isinstance(predictor, Generator):  # each text is its own run whatever the batch
        return 1
    if not config.on_cpu:
        return config.max_batch
    rank = predictor.manifest.task == "rank"
    items = calibration_batch(predictor, min(config.max_batch, 8 if rank else 32))
    sizes = [s for s in SESSION_BATCHES if s <= len(items)]
    seconds: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(repeats):
        for size in sizes:
            started = time.perf_counter()
            for start in range(0, len(items), size):
                chunk = items[start : start + size]
                predictor.rank_batch(chunk, size) if rank else predictor.logits(chunk, size)
            seconds[size].append(time.perf_counter() - started)
    return min(sizes, key=lambda s: statistics.median(seconds[s]))


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

    def _run(self, items: list[Any]) -> Sequence[Any]:
        """One session run for the items of several requests (in the executor thread)."""
        # one Predictor (and its run length) for the whole run, even across a reload
        predictor, size = self.predictor, self.session_batch
        if predictor.manifest.task == "rank":
            return predictor.rank_batch(items, size)
        return LabelledRows(softmax(predictor.logits(items, size)), list(predictor.labels))

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
        if self.task == "generate":
            return "/v1/chat/completions"
        return f"/v1/models/{self.name}/{'rank' if self.task == 'rank' else 'predict'}"

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
