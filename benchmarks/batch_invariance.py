"""Batch invariance, accuracy and latency of bundles side by side, in one process, interleaved.

For each bundle: test accuracy (batch 32); a text's probabilities at batch 1 vs batch 32 vs a
seeded mix of batches of 1..64 in shuffled order (largest difference, label changes); batch-1
latency (p50/p95/p99 over every text, the bundles called round-robin, rotating who goes first)
and batch-32 throughput. Sessions never spin (allow_spinning=0), so that no bundle's idle threads
steal the next one's cores.

    python benchmarks/batch_invariance.py --text-file data/bbc/test.jsonl --label-field label \\
        --out benchmarks/results/bbc-invariance exports/bbc-fp32 exports/bbc-dynamic ...
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from rec_edge.data.readers import read_examples
from rec_edge.runtime import Predictor
from rec_edge.versions import machine, versions


def batchings(predictor: Predictor, texts: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    rng = random.Random(seed + 1)
    mixed: np.ndarray | None = None
    start = 0
    while start < len(order):
        chunk = order[start : start + rng.randint(1, 64)]
        rows = predictor.predict_proba([texts[i] for i in chunk], batch_size=64)
        if mixed is None:
            mixed = np.zeros((len(texts), rows.shape[1]), dtype=np.float32)
        mixed[chunk] = rows
        start += len(chunk)
    assert mixed is not None
    return {
        "1": np.concatenate([predictor.predict_proba([t], batch_size=1) for t in texts]),
        "32": predictor.predict_proba(texts, batch_size=32),
        "mix": mixed,
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1e3
    return {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--text-file", required=True)
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--invariance-texts", type=int, default=1000)
    parser.add_argument("--latency-texts", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    examples = read_examples(args.text_file, args.text_field, args.label_field).examples
    random.Random(0).shuffle(examples)  # files are often sorted by label
    texts, labels = [e.text for e in examples], [e.label for e in examples]
    names = [Path(b).name for b in args.bundles]
    predictors = {
        n: Predictor.load(b, threads=args.threads, spinning=False)
        for n, b in zip(names, args.bundles, strict=True)
    }
    results: dict[str, dict] = {}  # type: ignore[type-arg]
    for name, predictor in predictors.items():
        probabilities = predictor.predict_proba(texts, batch_size=32)
        gold = np.array([predictor.labels.index(str(label)) for label in labels])
        runs = batchings(predictor, texts[: args.invariance_texts])
        label_sets = {k: v.argmax(-1) for k, v in runs.items()}
        results[name] = {
            "recipe": predictor.manifest.recipe.get("name"),
            "size_mb": round(predictor.bundle.model_path.stat().st_size / 1e6, 1),
            "accuracy": round(float(np.mean(probabilities.argmax(-1) == gold)), 4),
            "accuracy_batch1": round(
                float(np.mean(label_sets["1"] == gold[: len(label_sets["1"])])), 4
            ),
            "max_prob_diff": float(max(np.abs(runs["1"] - runs[k]).max() for k in ("32", "mix"))),
            "label_changes": int(
                np.sum(
                    (label_sets["1"] != label_sets["32"]) | (label_sets["1"] != label_sets["mix"])
                )
            ),
            "invariance_texts": len(label_sets["1"]),
        }
        print(name, results[name], flush=True)

    sample = texts[: args.latency_texts]
    latency: dict[str, list[float]] = {n: [] for n in names}
    throughput: dict[str, list[float]] = {n: [] for n in names}
    for predictor in predictors.values():  # warm-up
        for text in sample[:10]:
            predictor.predict_proba([text], batch_size=1)
    for i, text in enumerate(sample):
        turn = names[i % len(names) :] + names[: i % len(names)]
        for name in turn:
            start = time.perf_counter()
            predictors[name].predict_proba([text], batch_size=1)
            latency[name].append(time.perf_counter() - start)
        if i % 40 == 39:  # batch 32: 128 texts per call of predict_proba
            chunk = texts[(i // 40) * 128 % len(texts) :][:128]
            for name in turn:
                start = time.perf_counter()
                predictors[name].predict_proba(chunk, batch_size=32)
                throughput[name].append(len(chunk) / (time.perf_counter() - start))
    for name in names:
        results[name]["batch1_ms"] = percentiles(latency[name])
        results[name]["batch32_items_s"] = round(float(np.median(throughput[name])), 1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "text_file": args.text_file,
        "texts": len(texts),
        "threads": args.threads,
        "machine": machine(),
        "versions": versions(),
        "bundles": results,
    }
    (out / "invariance.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"Texts: {args.text_file} ({len(texts)}); invariance on the first "
        f"{min(args.invariance_texts, len(texts))}; batch-1 latency over {len(sample)} texts, "
        f"bundles interleaved; {args.threads} threads.",
        "",
        "| bundle | recipe | MB | accuracy (batch 32) | accuracy (batch 1) | max prob diff (1 vs 32 vs mix) "
        "| label changes | batch 1 p50 ms | p95 | p99 | batch 32 items/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['recipe']} | {r['size_mb']} | {r['accuracy']:.4f} | "
            f"{r['accuracy_batch1']:.4f} | {r['max_prob_diff']:.2e} | {r['label_changes']} | "
            f"{r['batch1_ms']['p50']:.2f} | {r['batch1_ms']['p95']:.2f} | "
            f"{r['batch1_ms']['p99']:.2f} | {r['batch32_items_s']:.0f} |"
        )
    (out / "invariance.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
