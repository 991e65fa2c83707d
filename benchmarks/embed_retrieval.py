"""Retrieval with a bundle's sentence vectors (`Predictor.embed`): are a tuned encoder's vectors
better in a vector index than the untuned model's? Nearest-neighbour search on BANKING77.

    python benchmarks/embed_retrieval.py --shots 0 --seed 42     # the untuned vectors
    python benchmarks/embed_retrieval.py --shots 8 --seed 42     # tuned on 8 examples a label

One part a call, writing OUT/k{K}-seed{S}.json. ``rec-edge train`` (its defaults; K=0 trains
nothing: the vectors are all-MiniLM-L6-v2's own, mean-pooled and unit length) on K examples a
label of the training split, ``rec-edge export`` (the gate), then every training text is
embedded into the index and every test text is a query, searched by cosine (exact, numpy):
1-NN accuracy (the nearest training text's intent), recall@10 (the share of the 10 nearest with
the query's intent) and mean reciprocal rank of the first same-intent neighbour. The index holds
the whole training split (10,003 texts) whatever K: the few-shot examples tune the encoder, the
index is what a user would search. BANKING77: ../shared/data/banking77 (CC BY 4.0, PolyAI).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge import Predictor
from rec_edge.config import ExportConfig, TrainConfig
from rec_edge.export import export
from rec_edge.train import train
from rec_edge.versions import machine, versions


def read(path: Path) -> tuple[list[str], list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def retrieval(index: np.ndarray, keys: list[str], queries: np.ndarray, truth: list[str]) -> dict[str, Any]:
    keys_array, truth_array = np.array(keys), np.array(truth)
    hits1, recall, reciprocal = [], [], []
    for start in range(0, len(queries), 256):
        similarity = queries[start : start + 256] @ index.T
        order = np.argsort(-similarity, axis=1, kind="stable")
        same = keys_array[order] == truth_array[start : start + 256, None]
        hits1 += same[:, 0].tolist()
        recall += same[:, :10].mean(axis=1).tolist()
        first = same.argmax(axis=1)
        reciprocal += np.where(same.any(axis=1), 1.0 / (first + 1), 0.0).tolist()
    return {
        "nn1_accuracy": round(float(np.mean(hits1)), 4),
        "recall_at_10": round(float(np.mean(recall)), 4),
        "mrr": round(float(np.mean(reciprocal)), 4),
        "queries": len(queries),
        "index": len(index),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", default="../shared/data/banking77")
    parser.add_argument("--work", default="runs/embed-retrieval")
    parser.add_argument("--out", default="benchmarks/results/embed-retrieval")
    args = parser.parse_args()
    data, work, out = Path(args.data), Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"k{args.shots}-seed{args.seed}"
    started = time.perf_counter()
    run = train(
        TrainConfig(
            train_file=str(data / "train.csv"),
            text_field="text",
            label_field="category",
            shots=args.shots,
            seed=args.seed,
            runs_dir=str(work / "runs"),
            name=name,
            force=True,
        )
    )
    train_seconds = time.perf_counter() - started
    bundle = export(
        ExportConfig(run_dir=str(run.run_dir), out=str(work / "bundles" / name), force=True),
        log=lambda _: None,
    ).bundle_dir
    predictor = Predictor.load(bundle, threads=2)
    train_texts, train_labels = read(data / "train.csv")
    test_texts, test_labels = read(data / "test.csv")
    started = time.perf_counter()
    index = predictor.embed(train_texts)
    seconds = time.perf_counter() - started
    queries = predictor.embed(test_texts)
    labels = [p.label for p in predictor.predictions(predictor.logits(test_texts))]
    result = {
        "protocol": __doc__.split("\n\n")[0],
        "shots": args.shots,
        "seed": args.seed,
        "retrieval": retrieval(index, train_labels, queries, test_labels),
        "classify_accuracy": round(
            sum(p == t for p, t in zip(labels, test_labels, strict=True)) / len(test_labels), 4
        ),
        "recipe": predictor.manifest.recipe.get("name"),
        "embed_texts_per_second": round(len(train_texts) / seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "machine": machine(),
        "versions": versions(),
    }
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["retrieval"]), result["classify_accuracy"])


if __name__ == "__main__":
    main()
