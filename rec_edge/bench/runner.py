"""`run_benchmark`: every engine in its own worker process, timed calls interleaved round-robin."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
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
from rec_edge.bundle import load_bundle
from rec_edge.config import BenchConfig, config_to_dict
from rec_edge.errors import ConfigError, DataError
from rec_edge.runtime.tokenize import BundleTokenizer
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


def _read_requests(config: BenchConfig) -> tuple[list[str], list[str] | None]:
    """Rank bundles: one JSON request per line, checked; gold = each request's label field."""
    import json

    from rec_edge.cli.predict import read_lines
    from rec_edge.runtime.predictor import parse_rank_request

    assert config.text_file is not None
    path = Path(config.text_file)
    lines = [(n, line) for n, line in enumerate(read_lines(path), start=1) if line.strip()]
    field = config.label_field
    texts, gold = [], []
    for n, line in lines[: config.max_texts]:
        where = f"{path}:{n}"
        try:
            body = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not valid JSON ({error})") from None
        if field:
            if not isinstance(body, dict) or not isinstance(body.get(field), str):
                raise DataError(f"{where}: field {field!r} (the expected item) is missing")
            gold.append(body.pop(field))
        text = json.dumps(body)
        parse_rank_request(text, where)  # every request checked before any engine starts
        texts.append(text)
    return texts, gold if config.label_field else None


def _request_cost(
    texts: list[str], tokenizer: BundleTokenizer, templates: Any, dims: dict[str, Any]
) -> tuple[float, float | None]:
    """Rank requests: mean tokens encoded per request, and the encoder MACs per request."""
    from rec_edge.runtime.predictor import parse_rank_request

    render = templates.preference_renderer()
    tokens, macs = [], []
    for text in texts[:256]:
        r = parse_rank_request(text)
        lengths = [
            len(e.ids) for e in tokenizer.encode([render(r.liked, r.disliked), *r.candidates])
        ]
        tokens.append(sum(lengths))
        each = [macs_per_item(dims, n) for n in lengths]
        macs.append(None if None in each else sum(m or 0.0 for m in each))
    known = [m for m in macs if m is not None]
    return float(np.mean(tokens)), float(np.mean(known)) if len(known) == len(macs) else None


def _read_texts(config: BenchConfig) -> tuple[list[str], list[str] | None]:
    from rec_edge.data.readers import FORMATS, read_examples

    assert config.text_file is not None
    path = Path(config.text_file)
    if FORMATS.get(path.suffix.lower()) is None:
        lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
        return lines[: config.max_texts], None
    examples = read_examples(path, config.text_field, config.label_field).examples
    random.Random(0).shuffle(examples)  # files are often sorted by label: sample across all of them
    examples = examples[: config.max_texts]
    labels = [str(e.label) for e in examples] if config.label_field else None
    return [e.text for e in examples], labels


def _synthetic_texts(bundle: Path, tokens: int, count: int) -> list[str]:
    """Texts that tokenize to exactly ``tokens`` tokens after the bundle's template."""
    from rec_edge.data.templates import TemplateSet

    b = load_bundle(bundle, verify=False)
    tokenizer = BundleTokenizer(b.tokenizer_path, max(tokens, b.manifest.max_length))
    templates = TemplateSet.from_dict(b.manifest.templates)
    base = len(tokenizer.encode([templates.render("", labels=b.manifest.labels)])[0].ids)
    if tokens > b.manifest.max_length:
        raise ConfigError(
            f"seq_length {tokens} exceeds the bundle's max_length {b.manifest.max_length}"
        )
    if tokens < base + 1:
        raise ConfigError(f"seq_length {tokens} is shorter than the template alone ({base} tokens)")
    return [" ".join(["a"] * (tokens - base))] * count


def _batches(texts: list[str], batch_size: int, count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[texts[rng.randrange(len(texts))] for _ in range(batch_size)] for _ in range(count)]


def total_rounds(config: BenchConfig) -> int:
    """Interleaved rounds run_benchmark will make (for a progress bar)."""
    workloads = 1 if config.text_file else len(config.seq_lengths)
    threads = len(config.threads) or 1
    return threads * workloads * len(config.batch_sizes) * (config.warmup + config.iterations)


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
    plan: list[tuple[str, str, Path]] = []  # (name, kind, bundle)
    seen_sources: set[Path] = set()
    for kind in config.engines:
        for b in bundles:
            if kind == "torch":  # one PyTorch engine per fp32 source model
                source = source_model_dir(b)
                if source in seen_sources:
                    continue
                seen_sources.add(source)
            reason = unavailable_reason(kind, b)
            if reason:
                notes.append(reason)
                continue
            plan.append(
                (f"{kind}:{b.name}" if kind != "torch" else f"torch:{b.name}-fp32", kind, b)
            )
    if not plan:
        raise ConfigError("No engine can run: " + "; ".join(notes))
    baseline_kind = config.baseline or (
        "torch" if any(k == "torch" for _, k, _ in plan) else plan[0][1]
    )

    tasks = {load_bundle(b, verify=False).manifest.task for b in bundles}
    if len(tasks) > 1:
        raise ConfigError("The bundles mix tasks (classify and rank); benchmark them apart.")
    rank = tasks == {"rank"}
    if rank and not config.text_file:
        raise ConfigError(
            "A rank bundle is benchmarked on rank requests: pass --text-file with one JSON request "
            'per line ({"liked": [...], "disliked": [...], "candidates": [...]}); --label-field '
            "names the expected item, for HR@1."
        )
    if config.text_file:
        texts, gold = _read_requests(config) if rank else _read_texts(config)
        if not texts:
            raise DataError(f"{config.text_file}: no texts")
        workloads = [("requests" if rank else "text", texts)]
    else:
        gold = None
        workloads = [(f"seq{n}", _synthetic_texts(bundles[0], n, 64)) for n in config.seq_lengths]

    first = load_bundle(bundles[0], verify=False)
    token_counter = BundleTokenizer(first.tokenizer_path, first.manifest.max_length)
    from rec_edge.data.templates import TemplateSet

    templates = TemplateSet.from_dict(first.manifest.templates)
    rows: list[dict[str, Any]] = []
    engines_info: dict[str, dict[str, Any]] = {}
    for threads in threads_list:
        say(f"threads={threads}: starting {len(plan)} engine workers")
        workers = []
        for name, kind, b in plan:
            worker = _Worker(name, kind, b, threads)
            if worker.error:
                notes.append(f"engine {name} failed to load: {worker.error}")
                continue
            workers.append(worker)
            engines_info.setdefault(
                name,
                {
                    "kind": kind,
                    "bundle": str(b),
                    "load_seconds": worker.load_seconds,
                    "model_bytes": load_bundle(b, verify=False).model_path.stat().st_size
                    if kind != "torch"
                    else _dir_weight_bytes(source_model_dir(b)),
                    "recipe": load_bundle(b, verify=False).manifest.recipe.get("name")
                    if kind != "torch"
                    else "fp32 (PyTorch)",
                },
            )
        try:
            for workload, pool in workloads:
                request_macs = None
                if rank:
                    mean_tokens, request_macs = _request_cost(
                        pool, token_counter, templates, first.manifest.source.get("dims") or {}
                    )
                else:
                    mean_tokens = float(
                        np.mean(
                            [
                                len(e.ids)
                                for e in token_counter.encode(
                                    [
                                        templates.render(t, labels=first.manifest.labels)
                                        for t in pool[:512]
                                    ]
                                )
                            ]
                        )
                    )
                for batch_size in config.batch_sizes:
                    say(
                        f"{workload} batch {batch_size}: {config.iterations} interleaved calls per engine"
                    )
                    batches = _batches(
                        pool, batch_size, config.warmup + config.iterations, seed=batch_size
                    )
                    for w, samples in _interleaved(workers, batches, config.warmup, tick).items():
                        rows.append(
                            {
                                "engine": w.name,
                                "kind": w.kind,
                                "workload": workload,
                                "threads": threads,
                                "batch_size": batch_size,
                                "mean_tokens": mean_tokens,
                                **({"macs_per_item": request_macs} if rank else {}),
                                "stats": LatencyStats.from_samples(samples, batch_size).to_dict(),
                                "samples": samples,
                            }
                        )
            for w in workers:
                engines_info[w.name].setdefault("peak_rss_bytes", 0)
                engines_info[w.name]["peak_rss_bytes"] = max(
                    engines_info[w.name]["peak_rss_bytes"], w.call("rss")
                )
            if gold is not None and threads == threads_list[0]:
                for w in workers:
                    say(f"accuracy of {w.name} on {len(texts)} texts")
                    predicted = []
                    for start in range(0, len(texts), 32):
                        predicted += w.call("predict", texts[start : start + 32])
                    engines_info[w.name]["accuracy"] = float(
                        np.mean([p == g for p, g in zip(predicted, gold, strict=True)])
                    )
        finally:
            for w in workers:
                w.stop()
    _ratios(rows, baseline_kind)

    cold: dict[str, Any] = {}
    if config.cold_start_runs:
        sample_text = (texts if config.text_file else workloads[0][1])[0]
        user_text = sample_text
        if rank:
            from rec_edge.runtime.predictor import parse_rank_request

            r = parse_rank_request(sample_text)
            user_text = templates.preference_renderer()(r.liked, r.disliked)
            notes.append(
                "cold start with a rank bundle: onnx loads and ranks one request; the other "
                "engines load and encode that request's user text once"
            )
        for name, kind, b in plan:
            say(f"cold start of {name} ({config.cold_start_runs} fresh processes)")
            optimum_dir = optimum_folder(b) if kind == "optimum" else None
            ranks = rank and kind == "onnx"
            try:
                cold[name] = cold_start(
                    "onnx-rank" if ranks else kind,
                    b.resolve(),
                    sample_text if ranks else user_text,
                    config.cold_start_runs,
                    source_model_dir(b),
                    optimum_dir,
                )
            finally:
                if optimum_dir:
                    shutil.rmtree(optimum_dir, ignore_errors=True)

    peak: dict[str, Any] = {}
    if config.peak:
        try:
            say("machine peak: fp32 and int8 matmuls through onnxruntime")
            peak = {
                str(t): {
                    "fp32_macs": matmul_peak(t, int8=False),
                    "int8_macs": matmul_peak(t, int8=True),
                }
                for t in threads_list
            }
            peak["theoretical"] = {str(t): theoretical_peak(t) for t in threads_list}
        except ImportError:
            notes.append(
                "machine peak skipped: the onnx package is not installed (pip install onnx)"
            )
    dims = first.manifest.source.get("dims") or {}
    for row in rows:  # rank rows: an item is a request (its user's text and its candidates)
        macs = (
            row["macs_per_item"]
            if "macs_per_item" in row
            else macs_per_item(dims, row["mean_tokens"])
        )
        row["macs_per_item"] = macs
        if macs and str(row["threads"]) in peak:
            int8 = engines_info[row["engine"]].get("recipe", "") not in (
                "fp32",
                "fp32 (PyTorch)",
                "fp16",
            )
            limit = peak[str(row["threads"])]["int8_macs" if int8 else "fp32_macs"]
            achieved = macs * row["stats"]["throughput"]
            row["achieved_macs"] = achieved
            row["fraction_of_peak"] = achieved / limit
            row["peak_kind"] = "int8" if int8 else "fp32"

    data = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config_to_dict(config),
        "baseline": baseline_kind,
        "machine": machine(),
        "versions": versions(),
        "python": sys.version.split()[0],
        "isolation": "one worker process per engine; OMP_WAIT_POLICY=PASSIVE; onnxruntime allow_spinning=0",
        "engines": engines_info,
        "results": rows,
        "cold_start": cold,
        "peak": peak,
        "notes": notes,
    }
    return BenchResult(data, notes)


def _interleaved(
    workers: list[_Worker], batches: list[list[str]], warmup: int, tick: Callable[[], None] | None
) -> dict[_Worker, list[float]]:
    """Round-robin timed calls, rotating who goes first; each worker times its own call."""
    for w in workers:
        w.call("prepare", batches)
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
