"""Speed whatever the caller's batching: a classify bundle's ``Predictor`` over the same texts
called as users call it, with the runs planned by the runtime (today, "measured run length":
each call cut by the measured run overhead, runtime.runs) and with one session run per call of
``batch_size`` (before: what a caller's batch_size used to mean), in one process, interleaved,
rounds in rotated order, medians.

    python benchmarks/run_length.py --bundle runs/embed-retrieval/bundles/k0-seed42

Calls: every text one at a time; ``predict_proba(texts, batch_size=B)`` over the whole list for
B in 8, 32, 128 and the whole list ("your list in one call"); and random chunks of 1 to 64 texts
in shuffled order (a queue). Also the batch-1 latency of bare onnxruntime on the same session
options and pre-tokenized input against ``Predictor.logits([text])`` (p50 over every text).
Writes OUT/run-length.json; the answers of every call are checked equal bit for bit.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.runtime import Predictor
from rec_edge.runtime.tokenize import pad_batch
from rec_edge.versions import machine, versions

UNCAPPED = 1 << 30  # a run length no call reaches: one session run per call of batch_size


def calls(texts: list[str], seed: int) -> dict[str, list[list[str]]]:
    """Each way of calling, as the list of calls (each a list of texts)."""
    rng = random.Random(seed)
    order = texts[:]
    rng.shuffle(order)
    queue, start = [], 0
    while start < len(order):
        size = rng.randint(1, 64)
        queue.append(order[start : start + size])
        start += size
    return {"one at a time": [[t] for t in texts], "whole list": [texts], "random chunks 1-64": queue}


def timed(predictor: Predictor, batches: list[list[str]], batch_size: int) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    rows = [predictor.predict_proba(chunk, batch_size=batch_size) for chunk in batches]
    return time.perf_counter() - started, np.concatenate(rows)


def bare_latency(predictor: Predictor, texts: list[str]) -> list[float]:
    """onnxruntime alone on the Predictor's own session: pre-tokenized, one text a run."""
    feeds = []
    for encoding in predictor.tokenizer.encode(predictor.render(texts)):
        batch = pad_batch([encoding], predictor.tokenizer.pad_id)
        feeds.append({name: batch[name] for name in predictor.input_names})
    out = []
    for feed in feeds:
        started = time.perf_counter()
        predictor.session.run([predictor.output_name], feed)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", default="../shared/data/banking77/test.csv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/run-length")
    args = parser.parse_args()
    with open(args.data, encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    measured = Predictor.load(args.bundle, threads=2)
    uncapped = Predictor.load(args.bundle, threads=2, run_length=UNCAPPED)
    runtimes = {"measured run length": measured, "one run per call (before)": uncapped}
    ways = calls(texts, seed=0)
    cases: list[tuple[str, list[list[str]], int]] = [
        ("one at a time", ways["one at a time"], 1),
        *((f"batch_size={b}", ways["whole list"], b) for b in (8, 32, 128)),
        (f"whole list in one call (batch_size={len(texts)})", ways["whole list"], len(texts)),
        ("random chunks 1-64 (batch_size=64)", ways["random chunks 1-64"], 64),
    ]
    reference = measured.predict_proba(texts, batch_size=1)
    seconds: dict[str, dict[str, list[float]]] = {c: {r: [] for r in runtimes} for c, _, _ in cases}
    equal = True
    for round_ in range(args.rounds):
        names = list(runtimes)[round_ % 2 :] + list(runtimes)[: round_ % 2]
        for case, batches, batch_size in cases:
            for name in names:
                took, rows = timed(runtimes[name], batches, batch_size)
                seconds[case][name].append(took)
                if case != "random chunks 1-64 (batch_size=64)":  # shuffled order
                    equal &= bool(np.array_equal(rows, reference))
    latency = {"bare onnxruntime": [], "Predictor.logits([text])": []}
    for _ in range(args.rounds):
        latency["bare onnxruntime"] += bare_latency(measured, texts[:500])
        for t in texts[:500]:
            started = time.perf_counter()
            measured.logits([t])
            latency["Predictor.logits([text])"].append((time.perf_counter() - started) * 1000)
    table: dict[str, Any] = {
        case: {
            name: round(len(texts) / statistics.median(values), 1) for name, values in by.items()
        }
        for case, by in seconds.items()
    }
    best = max(v for row in table.values() for v in row.values())
    result = {
        "protocol": __doc__.split("\n\n")[0],
        "bundle": args.bundle,
        "texts": len(texts),
        "rounds": args.rounds,
        "run_length": measured.run_length,
        "run_overhead_tokens": round(measured.run_overhead, 1),
        "items_per_second": table,
        "share_of_best": {
            case: {name: round(v / best, 3) for name, v in row.items()} for case, row in table.items()
        },
        "batch1_latency_ms": {
            name: {
                "p50": round(float(np.percentile(v, 50)), 3),
                "p95": round(float(np.percentile(v, 95)), 3),
                "p99": round(float(np.percentile(v, 99)), 3),
            }
            for name, v in latency.items()
        },
        "answers_equal_bit_for_bit": equal,
        "machine": machine(),
        "versions": versions(),
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run-length.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("run_overhead_tokens", "items_per_second", "batch1_latency_ms", "answers_equal_bit_for_bit")}, indent=1))


if __name__ == "__main__":
    main()
