"""Torch-free: scoring on Apache Spark: the parts as a DataFrame, one per partition,
``mapInPandas`` in Python workers that keep one PartScorer (one Predictor) per process; and
``spark_predict_udf`` for a user's own Spark job.

The bundle and the output folder must be on storage every executor can reach. On a local master
the Python workers run this interpreter (PYSPARK_PYTHON, unless set).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rec_edge.errors import MissingDependencyError
from rec_edge.scoring.output import STATS, part_name
from rec_edge.scoring.parts import Part
from rec_edge.scoring.scorer import Job, PartScorer, PartStats

# per Python worker process (Spark reuses them between tasks): job JSON -> its scorer
_SCORERS: dict[str, PartScorer] = {}
_PREDICTORS: dict[tuple[str, str], Any] = {}
POLL_S = 0.5


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise MissingDependencyError(
            "--engine spark needs PySpark: pip install 'rec-edge[spark]' (and Java 17+)."
        ) from None
    return pyspark.sql


def _score_parts(job_json: str, frames: Iterator[Any]) -> Iterator[Any]:
    import pandas as pd

    scorer = _SCORERS.get(job_json)
    if scorer is None:
        scorer = _SCORERS[job_json] = PartScorer(Job.from_json(job_json))
    for frame in frames:
        stats = [scorer.run(Part.from_json(p)).to_json() for p in frame["part"]]
        yield pd.DataFrame({"stats": stats})


def spark_session(master: str, app: str = "rec-edge score") -> Any:
    """A SparkSession on ``master``; a local master binds to loopback and runs this Python."""
    sql = _pyspark()
    builder = sql.SparkSession.builder.master(master).appName(app)
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
        )
    session = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def run_spark(job: Job, parts: list[Part], workers: int, master: str | None) -> Iterator[PartStats]:
    """PartStats as parts finish, one Spark task per part, ``workers`` at once on local[N].

    One ``collect`` runs every task at once (``toLocalIterator`` would run a job per partition,
    one after the other); meanwhile the parts' committed stats files tell the progress."""
    spark = spark_session(master or f"local[{workers}]")
    job_json = job.to_json()
    try:
        rows = spark.sparkContext.parallelize([(p.to_json(),) for p in parts], numSlices=len(parts))
        frame = spark.createDataFrame(rows, "part string")
        scored = frame.mapInPandas(lambda frames: _score_parts(job_json, frames), "stats string")
        with ThreadPoolExecutor(1, thread_name_prefix="rec-edge-spark") as pool:
            collected = pool.submit(scored.collect)
            yield from committed_stats(Path(job.out), {p.index for p in parts}, collected)
    finally:
        spark.stop()


def committed_stats(
    out: Path, pending: set[int], collected: Future[list[Any]]
) -> Iterator[PartStats]:
    """The stats of parts as their files are committed, then those the job returned alone
    (parts refused for bad rows commit nothing)."""
    while pending:
        finished = collected.done()
        for index in sorted(pending):
            path = out / STATS / part_name(index, "json")
            if path.is_file():
                pending.discard(index)
                yield PartStats.from_json(path.read_text())
        if finished:
            break
        time.sleep(POLL_S)
    for row in collected.result():  # raises what the Spark job raised
        stats = PartStats.from_json(row["stats"])
        if stats.index in pending:
            yield stats


def spark_predict_udf(
    bundle: str, all_scores: bool = False, threads: int | None = 1, batch_size: int = 32
) -> Any:
    """A pandas UDF for your own Spark job: a text column in, a struct of ``label`` and
    ``score`` (and ``scores``, a map, with ``all_scores``) out, the Predictor loaded once per
    Python worker process::

        predict = spark_predict_udf("exports/intents")
        df.withColumn("prediction", predict("text")).write.parquet("labelled/")
    """
    _pyspark()
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    schema = "label string, score double" + (", scores map<string, double>" if all_scores else "")

    def predict(batches: Any) -> Any:
        from rec_edge.runtime import load
        from rec_edge.runtime.outputs import softmax

        key = (bundle, str(threads))
        predictor = _PREDICTORS.get(key)
        if predictor is None:
            predictor = _PREDICTORS[key] = load(bundle, threads=threads)
        labels = predictor.labels
        for texts in batches:
            p = softmax(predictor.logits(texts.tolist(), batch_size))
            best = p.argmax(axis=-1)
            out = pd.DataFrame(
                {"label": [labels[b] for b in best], "score": p[range(len(best)), best]}
            )
            if all_scores:
                out["scores"] = [dict(zip(labels, row, strict=True)) for row in p.tolist()]
            yield out

    # Spark picks the UDF's kind from real type hints (this module's postponed ones are strings)
    predict.__annotations__ = {"batches": Iterator[pd.Series], "return": Iterator[pd.DataFrame]}
    return pandas_udf(schema)(predict)  # type: ignore[call-overload]
