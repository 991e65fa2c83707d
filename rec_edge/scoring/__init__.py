"""Torch-free: `rec-edge score`, a bundle over an input of any size, on one process, Ray or Spark.

The input is cut into parts; each part is read, scored and committed alone by the same code on
every engine, so the three engines write the same files and a stopped job resumes at its first
missing part. ``ray_batch_predictor`` and ``spark_predict_udf`` put a bundle into your own Ray or
Spark pipeline, where the engine reads and writes.
"""

from __future__ import annotations

from typing import Any

from rec_edge.scoring.job import ScoreResult, score
from rec_edge.scoring.predict import BatchPredictor

__all__ = ["BatchPredictor", "ScoreResult", "ray_batch_predictor", "score", "spark_predict_udf"]


def ray_batch_predictor(bundle: str, **options: Any) -> type:
    """See ``rec_edge.scoring.ray_engine.ray_batch_predictor`` (imported on first use)."""
    from rec_edge.scoring.ray_engine import ray_batch_predictor as make

    return make(bundle, **options)


def spark_predict_udf(bundle: str, **options: Any) -> Any:
    """See ``rec_edge.scoring.spark_engine.spark_predict_udf`` (imported on first use)."""
    from rec_edge.scoring.spark_engine import spark_predict_udf as make

    return make(bundle, **options)
