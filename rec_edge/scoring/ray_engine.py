"""Torch-free: scoring on Ray Data: the parts as a dataset, ``map_batches`` over an actor pool
that holds one Predictor per actor; and ``ray_batch_predictor`` for a user's own Ray pipeline.

Each actor loads the bundle from its path and checks every file's sha256 against the manifest
(``Predictor.load``), so a worker with another copy of the bundle refuses to score. The bundle and
the output folder must be on storage every node can reach (one machine, NFS, a mounted bucket).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from rec_edge.errors import MissingDependencyError
from rec_edge.scoring.parts import Part
from rec_edge.scoring.predict import BatchPredictor
from rec_edge.scoring.scorer import Job, PartScorer, PartStats


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "--engine ray needs Ray Data: pip install 'rec-edge[ray]'."
        ) from None
    return ray


class _PartActor:
    """A Ray actor: one PartScorer (one Predictor) for every part it is given."""

    job_json = ""  # set on the subclass that ``_actor_class`` makes for a job

    def __init__(self) -> None:
        self.scorer = PartScorer(Job.from_json(self.job_json))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        return {"stats": [self.scorer.run(Part.from_json(str(p))).to_json() for p in batch["part"]]}


def _actor_class(job: Job) -> type:
    """The actor class with the job inside: travels with the class, not as constructor
    arguments in the object store (which Ray cannot restore when it restarts an actor)."""
    return type("PartActor", (_PartActor,), {"job_json": job.to_json()})


def run_ray(
    job: Job, parts: list[Part], workers: int, threads: int, address: str | None
) -> Iterator[PartStats]:
    """PartStats as parts finish, scored by ``workers`` actors of ``threads`` CPUs each."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address,
            num_cpus=None if address else max(os.cpu_count() or 1, workers * threads),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-dataset INFO lines
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the job's own bar counts rows
        dataset = ray.data.from_items(
            [{"part": p.to_json()} for p in parts], override_num_blocks=len(parts)
        )
        scored = dataset.map_batches(
            _actor_class(job),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(parts))),
            num_cpus=threads,
        )
        for row in scored.iter_rows():
            yield PartStats.from_json(row["stats"])
    finally:
        if started:
            ray.shutdown()


def ray_batch_predictor(bundle: str, **options: Any) -> type:
    """A callable class for ``Dataset.map_batches`` in your own Ray pipeline: one Predictor per
    actor, loaded (and sha256-checked) once::

        ds = ray.data.read_parquet("s3://messages/")
        predict = ray_batch_predictor("exports/intents")
        ds = ds.map_batches(predict, compute=ray.data.ActorPoolStrategy(size=8), batch_size=256)
        ds.write_parquet("s3://labelled/")

    ``options`` go to ``BatchPredictor`` (text_field, all_scores, prefix, threads, batch_size).
    Each batch comes back with ``label`` and ``score`` columns added.
    """

    class RayBatchPredictor(BatchPredictor):
        def __init__(self) -> None:
            super().__init__(bundle, **options)

    return RayBatchPredictor
