"""How fast a bundle runs the texts `rec-edge serve` gathers, by the length of its session runs.

The server gathers up to 32 texts, sorts them by length and runs them in runs of
``--session-batch`` texts. This measures items/s for each run length on the same texts (1,024
shuffled test sentences, gathered 32 at a time), three interleaved repetitions:

    taskset -c 0 python benchmarks/serve_runs.py exports/banking77-serve \\
        ../shared/data/banking77/test.csv --threads 1 > benchmarks/results/serve-pinned/session-runs.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time

from rec_edge.runtime import Predictor

RUNS = (1, 2, 4, 8, 16, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("texts", help="CSV with a text column")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with open(args.texts, encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    random.Random(0).shuffle(texts)
    texts = texts[:1024]
    predictor = Predictor.load(args.bundle, threads=args.threads)
    predictor.logits(texts[:64], batch_size=32)  # warm-up
    rates: dict[int, list[int]] = {}
    for _ in range(args.repeats):
        for size in RUNS:
            started = time.perf_counter()
            for start in range(0, len(texts), 32):
                gathered = sorted(texts[start : start + 32], key=len)
                for s in range(0, len(gathered), size):
                    predictor.logits(gathered[s : s + size], batch_size=size)
            rates.setdefault(size, []).append(round(len(texts) / (time.perf_counter() - started)))
    print(json.dumps(rates))


if __name__ == "__main__":
    main()
