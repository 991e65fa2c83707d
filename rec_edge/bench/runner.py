"""`run_benchmark`: every engine in its own worker process, timed calls interleaved round-robin."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bench.coldstart import cold_start
from rec_edge.bench.engines import optimum_folder, source_model_dir, unavailable_reason
from rec_edge.bench.machine import macs_per_item, matmul_peak, theoretical_peak
from rec_edge.bench.stats import LatencyStats
from rec_edge.bench.worker import serve
from rec_edge.bench.workloads import Workloads, batches, read_workloads
from rec_edge.bundle import load_bundle
from rec_edge.config import BenchConfig, config_to_dict
from rec_edge.errors import ConfigError
from rec_edge.versions import machine, versions

SCHEMA = "rec-edge-bench/1"


@dataclass
class BenchResult:
    data: dict[str, Any]  # the whole report, as written to bench.json
    notes: list[str] = field(default_factory=list)


class _Worker:
    def __init__(self, name: str, kind: str, bundle: Path, threads: int):
        self.name, self.kind, self.bundle = name, kind, bundle
        context = mp.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, kind, str(bundle), threads), daemon=True
        )
        self.process.start()
        status, value = self.conn.recv()
        self.error = value if status == "error" else None
        self.load_seconds = None if self.error else value

    def call(self, command: str, argument: Any = None) -> Any:
        self.conn.send((command, argument))
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self.name}: {value}")
        return value

    def stop(self) -> None:
        if self.process.is_alive() and not self.error:
            self.call("stop")
        self.process.join(timeout=30)


def total_rounds(config: BenchConfig) -> int:
    """Interleaved rounds run_benchmark will make (for a progress bar)."""
    workloads = 1 if config.text_file else len(config.seq_lengths)
    threads = len(config.threads) or 1
    whole = 1 + config.whole_list if config.whole_list and config.text_file else 0
    return threads * (
        workloads * len(config.batch_sizes) * (config.warmup + config.iterations) + whole
    )


def run_benchmark(
    config: BenchConfig,
    progress: Callable[[str], None] | None = None,
    tick: Callable[[], None] | None = None,
) -> BenchResult:
    """``progress`` receives a line per phase, ``tick`` a call per interleaved round."""
    say = progress or (lambda _: None)
    bundles = [Path(b) for b in config.bundles]
    for b in bundles:
        load_bundle(b)  # every bundle checked before anything starts
    threads_list = config.threads or [
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ]
    notes: list[str] = []
    plan = _plan(config.engines, bundles, notes)
    baseline_kind = config.baseline or (
        "torch" if any(e.kind == "torch" for e in plan) else plan[0].kind
    )
    workloads = read_workloads(config, bundles)
    rows: list[dict[str, Any]] = []
    engines: dict[str, dict[str, Any]] = {}
    for threads in threads_list:
        say(f"threads={threads}: starting {len(plan)} engine workers")
        rows += _time_engines(
            config, plan, workloads, threads, threads == threads_list[0], engines, notes, say, tick
        )
    _ratios(rows, baseline_kind)
    cold = _cold_starts(config, plan, workloads, notes, say) if config.cold_start_runs else {}
    peak = _machine_peak(threads_list, notes, say) if config.peak else {}
    _against_peak(rows, peak, engines, workloads.dims)
    data = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config_to_dict(config),
        "baseline": baseline_kind,
        "machine": machine(),
        "versions": versions(),
        "python": sys.version.split()[0],
        "isolation": "one worker process per engine; OMP_WAIT_POLICY=PASSIVE; onnxruntime allow_spinning=0",
        "engines": engines,
        "results": rows,
        "cold_start": cold,
        "peak": peak,
        "notes": notes,
    }
    return BenchResult(data, notes)


@dataclass
class _Engine:
    name: str  # "kind:bundle", or "torch:bundle-fp32"
    kind: str
    bundle: Path


def _plan(kinds: list[str], bundles: list[Path], notes: list[str]) -> list[_Engine]:
    """Every (engine kind, bundle) that can run here, one PyTorch engine per fp32 source model;
    the others are noted with the reason."""
    plan: list[_Engine] = []
    seen_sources: set[Path] = set()
    for kind in kinds:
        for b in bundles:
            if kind == "torch":
                source = source_model_dir(b)
                if source in seen_sources:
                    continue
                seen_sources.add(source)
            reason = unavailable_reason(kind, b)
            if reason:
                notes.append(reason)
                continue
            plan.append(
                _Engine(f"torch:{b.name}-fp32" if kind == "torch" else f"{kind}:{b.name}", kind, b)
            )
    if not plan:
        raise ConfigError("No engine can run: " + "; ".join(notes))
    return plan


def _engine_info(engine: _Engine, worker: _Worker) -> dict[str, Any]:
    """What bench.json says of an engine: its bundle, load time, weights' size and recipe."""
    recipe: str | None
    if engine.kind in ("torch", "st-onnx"):  # the run's fp32 model, not the bundle's graph
        size = _dir_weight_bytes(source_model_dir(engine.bundle))
        recipe = "fp32 (PyTorch)" if engine.kind == "torch" else "fp32 (its own ONNX export)"
    else:
        loaded = load_bundle(engine.bundle, verify=False)
        size, recipe = loaded.model_path.stat().st_size, loaded.manifest.recipe.get("name")
    return {
        "kind": engine.kind,
        "bundle": str(engine.bundle),
        "load_seconds": worker.load_seconds,
        "model_bytes": size,
        "recipe": recipe,
    }


def _time_engines(
    config: BenchConfig,
    plan: list[_Engine],
    workloads: Workloads,
    threads: int,
    with_accuracy: bool,
    engines: dict[str, dict[str, Any]],
    notes: list[str],
    say: Callable[[str], None],
    tick: Callable[[], None] | None,
) -> list[dict[str, Any]]:
    """One worker process per engine at ``threads``; every workload and batch size timed
    interleaved; then each engine's peak RSS and (once) its accuracy on the gold labels."""
    workers = []
    for engine in plan:
        worker = _Worker(engine.name, engine.kind, engine.bundle, threads)
        if worker.error:
            notes.append(f"engine {engine.name} failed to load: {worker.error}")
            continue
        workers.append(worker)
        engines.setdefault(engine.name, _engine_info(engine, worker))
    rows = []
    try:
        for workload, pool in workloads.pools:
            mean_tokens, request_macs = workloads.cost(pool)
            for batch_size in config.batch_sizes:
                say(
                    f"{workload} batch {batch_size}: {config.iterations} interleaved calls per engine"
                )
                timed = batches(
                    pool, batch_size, config.warmup + config.iterations, seed=batch_size
                )
                for w, samples in _interleaved(workers, timed, config.warmup, tick).items():
                    rows.append(
                        _row(w, workload, batch_size, threads, samples, mean_tokens)
                        | ({"macs_per_item": request_macs} if workloads.rank else {})
                    )
        if config.whole_list and config.text_file and not workloads.rank:
            pool = workloads.texts
            say(f"whole list: {len(pool)} texts in one call, {config.whole_list} times per engine")
            timed = [pool] * (1 + config.whole_list)
            mean_tokens, _ = workloads.cost(pool)
            for w, samples in _interleaved(workers, timed, 1, tick, whole=True).items():
                rows.append(_row(w, "whole list", len(pool), threads, samples, mean_tokens))
        for w in workers:
            info = engines[w.name]
            info["peak_rss_bytes"] = max(info.get("peak_rss_bytes", 0), w.call("rss"))
        if workloads.gold is not None and with_accuracy:
            for w in workers:
                say(f"accuracy of {w.name} on {len(workloads.texts)} texts")
                engines[w.name]["accuracy"] = _accuracy(w, workloads.texts, workloads.gold)
    finally:
        for w in workers:
            w.stop()
    return rows


def _row(
    w: _Worker,
    workload: str,
    batch_size: int,
    threads: int,
    samples: list[float],
    mean_tokens: float,
) -> dict[str, Any]:
    return {
        "engine": w.name,
        "kind": w.kind,
        "workload": workload,
        "threads": threads,
        "batch_size": batch_size,
        "mean_tokens": mean_tokens,
        "stats": LatencyStats.from_samples(samples, batch_size).to_dict(),
        "samples": samples,
    }


def _accuracy(worker: _Worker, texts: list[str], gold: list[str]) -> float:
    predicted = []
    for start in range(0, len(texts), 32):
        predicted += worker.call("predict", texts[start : start + 32])
    return float(np.mean([p == g for p, g in zip(predicted, gold, strict=True)]))


def _cold_starts(
    config: BenchConfig,
    plan: list[_Engine],
    workloads: Workloads,
    notes: list[str],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Fresh processes per engine: import, load and the first answer (bench.coldstart)."""
    sample_text = workloads.texts[0]
    user_text = sample_text
    if workloads.rank:
        from rec_edge.runtime.requests import parse_rank_request

        r = parse_rank_request(sample_text)
        user_text = workloads.templates.preference_renderer()(r.liked, r.disliked)
        notes.append(
            "cold start with a rank bundle: onnx loads and ranks one request; the other "
            "engines load and encode that request's user text once"
        )
    cold: dict[str, Any] = {}
    for engine in plan:
        say(f"cold start of {engine.name} ({config.cold_start_runs} fresh processes)")
        optimum_dir = optimum_folder(engine.bundle) if engine.kind == "optimum" else None
        ranks = workloads.rank and engine.kind == "onnx"
        try:
            cold[engine.name] = cold_start(
                "onnx-rank" if ranks else engine.kind,
                engine.bundle.resolve(),
                sample_text if ranks else user_text,
                config.cold_start_runs,
                source_model_dir(engine.bundle),
                optimum_dir,
            )
        finally:
            if optimum_dir:
                shutil.rmtree(optimum_dir, ignore_errors=True)
    return cold


def _machine_peak(
    threads_list: list[int], notes: list[str], say: Callable[[str], None]
) -> dict[str, Any]:
    """fp32 and int8 matmul MACs/s through onnxruntime per thread count, and the theory's."""
    try:
        say("machine peak: fp32 and int8 matmuls through onnxruntime")
        peak: dict[str, Any] = {
            str(t): {
                "fp32_macs": matmul_peak(t, int8=False),
                "int8_macs": matmul_peak(t, int8=True),
            }
            for t in threads_list
        }
    except ImportError:
        notes.append("machine peak skipped: the onnx package is not installed (pip install onnx)")
        return {}
    peak["theoretical"] = {str(t): theoretical_peak(t) for t in threads_list}
    return peak


def _against_peak(
    rows: list[dict[str, Any]],
    peak: dict[str, Any],
    engines: dict[str, dict[str, Any]],
    dims: dict[str, Any],
) -> None:
    """Each row's MACs per item and, where the peak was measured, the share of it achieved
    (rank rows: an item is a request, its user's text and its candidates)."""
    for row in rows:
        macs = (
            row["macs_per_item"]
            if "macs_per_item" in row
            else macs_per_item(dims, row["mean_tokens"])
        )
        row["macs_per_item"] = macs
        if macs and str(row["threads"]) in peak:
            recipe = engines[row["engine"]].get("recipe", "")
            int8 = not recipe.startswith(("fp32", "fp16"))
            limit = peak[str(row["threads"])]["int8_macs" if int8 else "fp32_macs"]
            achieved = macs * row["stats"]["throughput"]
            row["achieved_macs"] = achieved
            row["fraction_of_peak"] = achieved / limit
            row["peak_kind"] = "int8" if int8 else "fp32"


def _interleaved(
    workers: list[_Worker],
    batches: list[list[str]],
    warmup: int,
    tick: Callable[[], None] | None,
    whole: bool = False,
) -> dict[_Worker, list[float]]:
    """Round-robin timed calls, rotating who goes first; each worker times its own call
    (``whole``: each batch is a user's whole list, in one call as the engine takes a list)."""
    for w in workers:
        w.call("prepare", (batches, whole))
    samples: dict[_Worker, list[float]] = {w: [] for w in workers}
    for i in range(len(batches)):
        for w in workers[i % len(workers) :] + workers[: i % len(workers)]:
            seconds = w.call("run", i)
            if i >= warmup:
                samples[w].append(seconds)
        if tick:
            tick()
    return samples


def _ratios(rows: list[dict[str, Any]], baseline_kind: str) -> None:
    for row in rows:
        same = [
            r
            for r in rows
            if r["kind"] == baseline_kind
            and r["workload"] == row["workload"]
            and r["batch_size"] == row["batch_size"]
            and r["threads"] == row["threads"]
        ]
        row["speedup_vs_baseline"] = same[0]["stats"]["p50"] / row["stats"]["p50"] if same else None


def _dir_weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))
