"""Torch-free: ``score(config)``, the verb behind `rec-edge score`: plan the parts, open (or
resume) the output folder, score the parts not yet committed on the chosen engine, seal it."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rec_edge.bundle import load_bundle
from rec_edge.config import ScoreConfig, config_to_dict
from rec_edge.errors import ConfigError, DataError, OutputExistsError
from rec_edge.overwrite import check_replaceable
from rec_edge.runtime.predictor import EMBEDDING_OUTPUT
from rec_edge.scoring.output import (
    JOB_FILE,
    REJECTS,
    STATS,
    SUCCESS_FILE,
    done_parts,
    part_totals,
    remove_temporaries,
    write_json,
)
from rec_edge.scoring.parts import Part, first_fields, input_files, plan_parts
from rec_edge.scoring.scorer import SCORED_TASKS, Job, PartScorer, PartStats, raise_problems
from rec_edge.versions import versions


@dataclass(frozen=True)
class ScoreResult:
    out: Path
    parts: int
    resumed: int  # parts already committed when the job started
    rows: int  # records read (this run and before)
    written: int  # output rows
    rejected: int
    seconds: float  # this run
    rows_per_second: float  # this run's rows over its seconds


def score(config: ScoreConfig) -> ScoreResult:
    """Score ``config.input`` with ``config.bundle`` into the folder ``config.out``."""
    began = time.perf_counter()
    files, fmt = input_files(config.input, config.input_format)
    job = resolve_job(config, fmt)
    parts = plan_parts(files, fmt, config.part_rows, config.max_row_bytes)
    if not parts:
        raise DataError(f"{config.input}: no rows to score")
    _check_fields(job, parts[0])
    out = Path(config.out)
    fingerprint = {**_fingerprint(config, job, files), "parts": len(parts)}
    inputs = [config.input, config.bundle, *([config.candidates] if config.candidates else [])]
    if config.force:  # only a scoring job's folder goes, and never one that holds an input
        check_replaceable(out, JOB_FILE, inputs)
    done = open_output(out, fingerprint, len(parts), config.resume, config.force, job.out_format)
    pending = [p for p in parts if p.index not in done]
    stats = _run(config, job, pending, _progress(config, parts, done))
    return seal(out, config, len(parts), stats, len(done), time.perf_counter() - began)


def resolve_job(config: ScoreConfig, input_format: str) -> Job:
    """The worker-side settings, checked against the bundle before any part is read."""
    bundle = load_bundle(config.bundle, verify=False)
    task = bundle.manifest.task
    if task not in SCORED_TASKS:
        raise ConfigError(
            f"{config.bundle} is a {task!r} bundle: score takes {' and '.join(SCORED_TASKS)} "
            "bundles (a generate bundle writes text: rec-edge generate, or Generator.generate)."
        )
    if (
        SCORED_TASKS[task].needs_candidates
        and config.candidates is None
        and not bundle.manifest.items_file
    ):
        raise ConfigError(
            f"{config.bundle} has no catalog (an item index) to rank; pass --candidates FILE."
        )
    if config.embed and EMBEDDING_OUTPUT not in bundle.manifest.outputs:
        raise ConfigError(
            f"{config.bundle} gives no sentence vectors for --embed (a {task!r} bundle without "
            f"the '{EMBEDDING_OUTPUT}' output): export the run again with this version."
        )
    fmt = config.out_format or input_format
    return Job(
        bundle=str(Path(config.bundle).resolve()),
        out=str(Path(config.out).resolve()),
        task=task,
        out_format=fmt,
        on_error=config.on_error,
        batch_size=config.batch_size,
        threads=_threads(config),
        text_field=config.text_field,
        all_scores=config.all_scores,
        embed=config.embed,
        prefix=config.prefix,
        user_field=config.user_field,
        candidates=read_candidates(Path(config.candidates)) if config.candidates else None,
        k=config.k,
    )


def _threads(config: ScoreConfig) -> int | None:
    """onnxruntime intra-op threads per worker: local with one worker, every core (None);
    otherwise the cores shared among the workers (Ray and Spark: 1 each by default)."""
    if config.threads is not None:
        return config.threads
    if config.engine == "local":
        workers = config.workers or 1
        return None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    return 1


def _workers(config: ScoreConfig) -> int:
    """Parts scored at once: local, 1 unless told (threads of one process); Ray actors and Spark
    tasks, one per core's worth of threads."""
    if config.workers is not None:
        return config.workers
    if config.engine == "local":
        return 1
    return max(1, (os.cpu_count() or 1) // (config.threads or 1))


def read_candidates(path: Path) -> list[str]:
    """Titles, one per line (or JSONL: a string or an object with "item" per line), in order,
    without repeats."""
    if not path.is_file():
        raise DataError(f"{path}: candidates file not found")
    titles: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        if path.suffix.lower() in (".jsonl", ".json"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(f"{path}:{number}: malformed JSON ({error.msg})")
                continue
            except RecursionError:
                problems.append(f"{path}:{number}: JSON nested too deeply")
                continue
            value = value.get("item") if isinstance(value, dict) else value
            if not isinstance(value, str):
                problems.append(f'{path}:{number}: expected a title string or {{"item": title}}')
                continue
            titles.append(value)
        else:
            titles.append(line.rstrip("\r"))
    if problems:
        raise DataError(problems)
    if not titles:
        raise DataError(f"{path}: no candidates")
    return list(dict.fromkeys(titles))


def _check_fields(job: Job, first: Part) -> None:
    """A whole-input mistake is one error before any scoring, not one reject per row."""
    fields = first_fields(first)
    if not fields:
        return
    problem = SCORED_TASKS[job.task].fields_problem(job, fields)
    if problem:
        raise ConfigError(f"{first.path}:{first.first_line}: {problem}")


def _fingerprint(config: ScoreConfig, job: Job, files: list[Path]) -> dict[str, Any]:
    """What makes two runs the same job: a resumed run must match it (engine and workers may
    change: every engine writes the same parts)."""
    settings = {k: v for k, v in json.loads(job.to_json()).items() if k not in ("threads", "out")}
    bundle = load_bundle(config.bundle, verify=False).manifest.files
    return {
        "job": settings,
        "bundle_files": bundle,
        "inputs": [
            {"path": str(p.resolve()), "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
            for p in files
        ],
        "part_rows": config.part_rows,
    }


def open_output(
    out: Path, fingerprint: dict[str, Any], parts: int, resume: bool, force: bool, fmt: str
) -> set[int]:
    """The output folder, new or resumed; the indices of the parts already committed. With
    ``force`` the folder is deleted first: the caller checks it may be (``check_replaceable``)."""
    job_file = out / JOB_FILE
    if out.exists() and force:
        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()):
        if not resume:
            count = len(done_parts(out, fmt)) if job_file.is_file() else 0
            raise OutputExistsError(
                f"{out} exists ({count} of {parts} parts done). Pass --resume to continue the "
                "job, or --force to start over."
            )
        if not job_file.is_file():
            raise OutputExistsError(
                f"{out} exists but holds no {JOB_FILE}: not a scoring job's folder."
            )
        before = json.loads(job_file.read_text())
        changed = sorted(k for k in fingerprint if before.get(k) != fingerprint[k])
        if changed:
            raise ConfigError(
                f"{out}: --resume of another job (changed since it started: "
                f"{', '.join(changed)}). Pass --force to start over."
            )
        remove_temporaries(out)
        done = {i for i in done_parts(out, fmt) if i < parts}
        if len(done) < parts:  # a part went missing since it was sealed: no longer whole
            (out / SUCCESS_FILE).unlink(missing_ok=True)
        return done
    (out / REJECTS).mkdir(parents=True, exist_ok=True)
    (out / STATS).mkdir(exist_ok=True)
    write_json(job_file, fingerprint)
    return set()


def _run(
    config: ScoreConfig, job: Job, parts: list[Part], progress: Callable[[int], None]
) -> list[PartStats]:
    """Score ``parts`` on the configured engine; stop at the first part with bad rows (fail)."""
    stats: list[PartStats] = []
    for part_stats in _engine(config, job, parts, progress):
        raise_problems(part_stats)
        if config.engine != "local":
            progress(part_stats.rows)
        stats.append(part_stats)
    progress(0)
    return stats


def _engine(
    config: ScoreConfig, job: Job, parts: list[Part], progress: Callable[[int], None]
) -> Iterator[PartStats]:
    if not parts:
        return iter(())
    if config.engine == "ray":
        from rec_edge.scoring.ray_engine import run_ray

        return run_ray(job, parts, _workers(config), job.threads or 1, config.address)
    if config.engine == "spark":
        from rec_edge.scoring.spark_engine import run_spark

        return run_spark(job, parts, _workers(config), config.master)
    return run_local(job, parts, _workers(config), progress)


def run_local(
    job: Job, parts: list[Part], workers: int, progress: Callable[[int], None]
) -> Iterator[PartStats]:
    """One process, one Predictor; ``workers`` parts at once in threads (onnxruntime and the
    tokenizer release the GIL), stats in the order parts finish."""
    scorer = PartScorer(job)
    if workers == 1:
        yield from (scorer.run(p, progress) for p in parts)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="rec-edge-score") as pool:
        running = [pool.submit(scorer.run, p, progress) for p in parts]
        try:
            for future in as_completed(running):
                yield future.result()
        finally:  # a failed part: do not start the parts still queued
            for future in running:
                future.cancel()


def _progress(config: ScoreConfig, parts: list[Part], done: set[int]) -> Callable[[int], None]:
    """A callback taking rows scored (0: the end) that keeps a bar on stderr."""
    if not config.progress:
        return lambda rows: None
    from tqdm import tqdm

    bar = tqdm(
        total=sum(p.rows for p in parts),
        initial=sum(p.rows for p in parts if p.index in done),
        unit=" rows",
        file=sys.stderr,
        dynamic_ncols=True,
        desc=f"score ({config.engine})",
    )

    def update(rows: int) -> None:
        bar.update(rows) if rows else bar.close()

    return update


def seal(
    out: Path, config: ScoreConfig, parts: int, stats: list[PartStats], resumed: int, seconds: float
) -> ScoreResult:
    """_SUCCESS.json: every part is in. Counts cover the parts of earlier runs too."""
    totals = part_totals(out, set(range(parts)))
    this_run = sum(s.rows for s in stats)
    result = ScoreResult(
        out,
        parts,
        resumed,
        totals["rows"],
        totals["written"],
        totals["rejected"],
        seconds,
        this_run / max(seconds, 1e-9),
    )
    write_json(
        out / SUCCESS_FILE,
        {
            "parts": parts,
            **totals,
            "resumed_parts": resumed,
            "seconds": round(seconds, 3),
            "rows_per_second": round(result.rows_per_second, 1),
            "engine": config.engine,
            "config": config_to_dict(config),
            "versions": versions(),
        },
    )
    return result
