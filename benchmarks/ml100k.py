"""MovieLens-100K as instruction following: train (TALLRec pointwise), export (int8 gate), then in
one evaluation run the bundle's test AUC, its leave-one-out ranking over 20 candidates, the
random and most-popular baselines, and the latency of ranking 20 candidates for one user.

    python benchmarks/ml100k.py --shots 64 --out benchmarks/results/ml100k-64

MovieLens-100K comes from the recbole wheel (`make data`); its licence forbids redistribution.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rec_edge import ExportConfig, Predictor, TrainConfig, export, train
from rec_edge.bench.stats import LatencyStats
from rec_edge.data.baselines import pointwise_baselines, rank_baselines
from rec_edge.data.interactions import read_interactions
from rec_edge.data.recommend import pointwise_splits, ranking_cases
from rec_edge.metrics import ranking_metrics, roc_auc
from rec_edge.versions import machine, versions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/ml-100k")
    parser.add_argument("--shots", type=int, default=None, help="training examples in all (default: all)")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    name = f"ml100k-{args.shots or 'full'}"
    run = train(TrainConfig(train_file=args.data, task="rank", shots=args.shots, epochs=args.epochs, name=name,
                            max_length=192, validation_limit=500, early_stopping_patience=None, force=True))
    bundle = export(ExportConfig(run_dir=str(run.run_dir), out=f"exports/{name}", force=True)).bundle_dir
    predictor = Predictor.load(bundle)
    yes = predictor.labels.index("yes")

    data = read_interactions(args.data)
    splits = pointwise_splits(data)
    render = predictor.templates.preference_renderer()
    prompts = [render(e.preference.liked, e.preference.disliked, e.candidate) for e in splits["test"]]
    labels = [int(e.label == "yes") for e in splits["test"]]
    auc = roc_auc(labels, predictor.predict_proba(prompts)[:, yes])

    cases = ranking_cases(data)
    ranked = []
    for case in cases:
        titles = [data.titles[item] for item in case.candidates]
        by_title = dict(zip(titles, case.candidates, strict=True))
        history = {"liked": case.preference.liked, "disliked": case.preference.disliked}
        ranked.append([by_title[r.item] for r in predictor.rank(history, titles)])
    model_rank = ranking_metrics(ranked, [c.target for c in cases])
    timings = []
    for case in cases[:200]:
        titles = [data.titles[item] for item in case.candidates]
        start = time.perf_counter()
        predictor.rank({"liked": case.preference.liked, "disliked": case.preference.disliked}, titles)
        timings.append(time.perf_counter() - start)
    latency = LatencyStats.from_samples(timings, items=20).to_dict()

    result = {
        "shots": args.shots, "train_examples": args.shots or len(splits["train"]),
        "bundle": str(bundle), "recipe": predictor.manifest.recipe["name"],
        "pointwise_test": {"n": len(labels), "auc": auc, "baselines": pointwise_baselines(data, splits["train"], splits["test"])},
        "ranking": {"users": len(cases), "model": model_rank, "baselines": rank_baselines(data, cases)},
        "rank20_latency": latency, "machine": machine(), "versions": versions(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ml100k.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("shots", "recipe", "pointwise_test", "ranking")}, indent=1))
    print(f"rank 20 candidates: p50 {latency['p50'] * 1e3:.1f} ms, p95 {latency['p95'] * 1e3:.1f} ms")
    print(f"AUC {auc:.4f}; ranking NDCG@10 {model_rank['NDCG@10']:.4f} "
          f"(most popular {result['ranking']['baselines']['most popular']['NDCG@10']:.4f}); "
          f"mean P(yes) on test {np.mean(labels):.3f} positives")


if __name__ == "__main__":
    main()
