"""TORCH-FREE served models: a bundle under a name, its Predictor, its batcher, and reloads that
swap a checked and warmed Predictor in without failing a request in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rec_edge.config import ServeConfig
from rec_edge.errors import BundleError
from rec_edge.runtime import Predictor
from rec_edge.runtime.predictor import RankRequest, softmax
from rec_edge.serve.batcher import MicroBatcher

# Texts of a few lengths: the first runs size onnxruntime's arena before any client waits on it.
WARM_TEXTS = ["warm up", "a longer text to warm up the session with a few more tokens " * 4]


def load_predictor(path: str | Path, config: ServeConfig) -> Predictor:
    """Load and check a bundle (manifest, sha256 of its files), then warm it up."""
    predictor = Predictor.load(path, config.provider, config.threads, spinning=config.spinning)
    if predictor.manifest.task == "rank":
        titles = predictor.catalog[:20] or WARM_TEXTS
        predictor.rank_batch([RankRequest(titles[:2], [], titles, 10)])
    else:
        predictor.logits(WARM_TEXTS)
        predictor.logits(WARM_TEXTS * (config.max_batch // 2 or 1), batch_size=config.max_batch)
    return predictor


class ServedModel:
    """One bundle under one name. Its batcher reads ``self.predictor`` at the start of each run,
    so a reload swaps the Predictor between two runs."""

    def __init__(self, name: str, path: str, predictor: Predictor, config: ServeConfig):
        self.name = name
        self.path = path
        self.config = config
        self.predictor = predictor
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
        predictor = self.predictor  # one Predictor for the whole run, even across a reload
        size = self.config.resolved_session_batch
        if predictor.manifest.task == "rank":
            return predictor.rank_batch(items, size)
        probabilities = softmax(predictor.logits(items, size))
        return probabilities  # type: ignore[return-value]  # an array: sliced per request

    def describe(self) -> dict[str, Any]:
        manifest = self.predictor.manifest
        return {
            "name": self.name,
            "task": manifest.task,
            "labels": list(manifest.labels),
            "recipe": manifest.recipe,
            "source": manifest.source,
            "model_sha256": self.sha256,
            "path": str(self.path),
            "loaded_at": self.loaded_at,
            "endpoint": f"/v1/models/{self.name}/{'rank' if manifest.task == 'rank' else 'predict'}",
        }

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
            self.predictor = predictor
            self.loaded_at = time.time()
            return {"name": self.name, "model_sha256": self.sha256, "previous_sha256": previous}
