"""The same job on a real local Ray cluster (2 CPUs) and a real Spark (local[2]) writes the same
files as the local engine; the helpers for users' own Ray and Spark pipelines give the
Predictor's answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rec_edge.config import ScoreConfig
from rec_edge.runtime import Predictor
from rec_edge.scoring import ray_batch_predictor, score, spark_predict_udf
from tests.helpers import make_examples, write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, rank_bundle: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("engines")
    texts = [{"id": i, "text": r["text"]} for i, r in enumerate(make_examples(10, seed=3))]
    texts.insert(7, {"id": -1, "txt": "a bad row"})
    catalog = Predictor.load(rank_bundle).catalog
    users = [
        {"user": f"u{i}", "liked": catalog[i : i + 3], "disliked": [catalog[-i - 1]]}
        for i in range(5)
    ]
    return {
        "texts": write_jsonl(folder / "texts.jsonl", texts),  # type: ignore[arg-type]
        "users": write_jsonl(folder / "users.jsonl", users),  # type: ignore[arg-type]
    }


def run(bundle: Path, source: Path, out: Path, engine: str, **options: object) -> Path:
    score(
        ScoreConfig(
            str(bundle),
            str(source),
            str(out),
            engine=engine,
            progress=False,
            workers=2,
            **options,  # type: ignore[arg-type]
        )
    )
    return out


def files(out: Path) -> dict[str, bytes]:
    names = ["part-*", "rejects/part-*"]
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for n in names for p in sorted(out.glob(n))
    }


@pytest.mark.parametrize("engine", ["ray", "spark"])
def test_every_engine_writes_the_same_files(
    engine: str,
    tiny_bundle: Path,
    rank_bundle: Path,
    inputs: dict[str, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if engine == "ray":
        request.getfixturevalue("ray_cluster")
    else:
        pytest.importorskip("pyspark")
    options = {"part_rows": 8, "on_error": "skip", "all_scores": True}
    local = run(tiny_bundle, inputs["texts"], tmp_path / "local", "local", **options)
    other = run(tiny_bundle, inputs["texts"], tmp_path / engine, engine, **options)
    assert len(files(local)) == 5  # 4 parts and one rejects file
    assert files(other) == files(local)
    summary = json.loads((other / "_SUCCESS.json").read_text())
    assert (summary["rows"], summary["written"], summary["rejected"]) == (31, 30, 1)

    local = run(rank_bundle, inputs["users"], tmp_path / "rank-local", "local", k=4, part_rows=2)
    other = run(rank_bundle, inputs["users"], tmp_path / f"rank-{engine}", engine, k=4, part_rows=2)
    assert len(files(local)) == 3 and files(other) == files(local)


def test_a_local_job_resumes_on_ray(
    tiny_bundle: Path, inputs: dict[str, Path], tmp_path: Path, ray_cluster: None
) -> None:
    """Parts are the same on every engine, so a job stopped on one finishes on another."""
    whole = run(
        tiny_bundle, inputs["texts"], tmp_path / "whole", "local", part_rows=8, on_error="skip"
    )
    out = tmp_path / "out"
    run(tiny_bundle, inputs["texts"], out, "local", part_rows=8, on_error="skip")
    for name in ("part-00002.jsonl", "part-00003.jsonl"):
        (out / name).unlink()
    run(tiny_bundle, inputs["texts"], out, "ray", part_rows=8, on_error="skip", resume=True)
    assert files(out) == files(whole)


def test_ray_batch_predictor_in_a_users_pipeline(
    tiny_bundle: Path, ray_cluster: None, tmp_path: Path
) -> None:
    """read_json -> map_batches(one Predictor per actor) -> write_parquet, Ray's own I/O."""
    import pyarrow.parquet as pq
    import ray

    texts = [r["text"] for r in make_examples(8, seed=5)]
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "n": i} for i, t in enumerate(texts)])  # type: ignore[arg-type]
    ray.data.read_json(str(source)).map_batches(
        ray_batch_predictor(str(tiny_bundle)),
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=0.5,  # 2 actors of a whole CPU each would leave the read task none: deadlock
        batch_size=5,
    ).write_parquet(str(tmp_path / "out"))
    rows = pq.read_table(tmp_path / "out").to_pylist()
    expected = {
        t: p for t, p in zip(texts, Predictor.load(tiny_bundle).predict(texts), strict=True)
    }
    assert sorted(r["n"] for r in rows) == list(range(len(texts)))
    for row in rows:
        assert row["label"] == expected[row["text"]].label
        assert row["score"] == pytest.approx(expected[row["text"]].score, abs=1e-5)


def test_spark_predict_udf_in_a_users_job(tiny_bundle: Path, tmp_path: Path) -> None:
    """spark.read.json -> withColumn(the UDF) -> write.parquet, Spark's own I/O."""
    pytest.importorskip("pyspark")
    from rec_edge.scoring.spark_engine import spark_session

    texts = [r["text"] for r in make_examples(8, seed=6)]
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])  # type: ignore[arg-type]
    spark = spark_session("local[2]")
    try:
        frame = spark.read.json(str(source)).repartition(3)
        predict = spark_predict_udf(str(tiny_bundle), all_scores=True)
        frame.withColumn("p", predict("text")).write.parquet(str(tmp_path / "out"))
        rows = spark.read.parquet(str(tmp_path / "out")).collect()
    finally:
        spark.stop()
    expected = {
        t: p for t, p in zip(texts, Predictor.load(tiny_bundle).predict(texts), strict=True)
    }
    assert len(rows) == len(texts)
    for row in rows:
        assert row["p"]["label"] == expected[row["text"]].label
        assert row["p"]["score"] == pytest.approx(expected[row["text"]].score, abs=1e-5)
        assert set(row["p"]["scores"]) == set(expected[row["text"]].scores)


def test_a_ray_worker_killed_mid_job_loses_nothing(tiny_bundle: Path, tmp_path: Path) -> None:
    """`kill -9` of a Ray actor while `rec-edge score --engine ray` runs: Ray restarts it and
    retries its part, or the job fails and `--resume` finishes it; either way the files are
    byte for byte those of an uninterrupted local run."""
    import signal
    import subprocess
    import sys
    import time

    psutil = pytest.importorskip("psutil")
    pytest.importorskip("ray")
    examples = make_examples(500, seed=4)  # 1,500 rows: 10 parts
    rows = [{"id": i, "text": r["text"]} for i, r in enumerate(examples)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)  # type: ignore[arg-type]
    args = [str(tiny_bundle), str(source), "--part-rows", "150", "--batch-size", "4"]
    command = [sys.executable, "-m", "rec_edge.cli", "score", *args, "--no-progress"]
    killed = tmp_path / "killed"
    ray_args = ["--engine", "ray", "--workers", "2", "--threads", "1"]
    job = subprocess.Popen([*command, *ray_args, "--out", str(killed)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    actors: list = []
    while not actors:
        assert job.poll() is None and time.monotonic() < deadline, "the job ended before the kill"
        if list(killed.glob("part-*.jsonl")):  # scoring has begun: the actors are busy
            actors = [
                p
                for p in psutil.Process(job.pid).children(recursive=True)
                if "PartActor" in " ".join(p.cmdline()) or p.name().startswith("ray::Map")
            ]
        time.sleep(0.02)
    actors[0].send_signal(signal.SIGKILL)
    _, stderr = job.communicate(timeout=300)
    parts = sorted(p.name for p in killed.glob("part-*.jsonl"))
    if job.returncode != 0:  # Ray gave up on the part: the job says how to go on
        assert b"--resume" in stderr and b"Traceback" not in stderr, stderr[-2000:]
        assert len(parts) < 10 and not (killed / "_SUCCESS.json").exists()
        resumed = subprocess.run(
            [*command, *ray_args, "--out", str(killed), "--resume"], capture_output=True
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = tmp_path / "whole"
    subprocess.run([*command, "--out", str(whole)], check=True, capture_output=True)
    assert len(files(whole)) == 10 and files(killed) == files(whole)
    assert not list(killed.glob(".*.tmp"))
