"""MovieLens-100K as instruction following: train (TALLRec pointwise pairs, then the collaborative
tables), export (int8 gate), then in one evaluation run the bundle's test AUC, its leave-one-out
ranking over 20 candidates, each of its two parts alone (the text towers, the tables), the
baselines (random, most popular, rating biases, item-kNN and ALS from `implicit`), and the
latency of ranking 20 candidates for one user, with every candidate encoded and from the
bundle's item index, interleaved. ``--run`` on a run without tables fits them first.

    python benchmarks/ml100k.py --shots 64 --out benchmarks/results/ml100k-64
    python benchmarks/ml100k.py --run runs/ml100k-full --out benchmarks/results/ml100k-full
    python benchmarks/ml100k.py --model runs/ml100k-full/model --name ml100k-full2 \
        --learning-rate 5e-4 --seed 1 --out ...   # a second epoch on top of the first

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
from rec_edge.data.baselines import (
    collaborative_pointwise_baselines,
    collaborative_rank_baselines,
    pointwise_baselines,
    rank_baselines,
)
from rec_edge.data.interactions import read_interactions
from rec_edge.data.recommend import PointwiseExample, pointwise_splits, ranking_cases
from rec_edge.metrics import pair_report, ranking_metrics, roc_auc
from rec_edge.runtime.collab import add_tables, rank_values
from rec_edge.runtime.predictor import pair_scores
from rec_edge.train.collab import COLLAB_FILE, fit_collaborative
from rec_edge.versions import machine, versions


def _training(run_dir: Path) -> dict[str, object]:
    """What the bundle was trained on, from its run.json (if the run folder is still there)."""
    path = run_dir / "run.json"
    if not path.is_file():
        return {"run": str(run_dir), "note": "run.json not found"}
    run = json.loads(path.read_text(encoding="utf-8"))
    keys = ("model", "shots", "epochs", "max_length", "learning_rate", "lora_r", "dropout", "lora_dropout",
            "negatives", "seed")
    info = {"counts": run["counts"], "train_seconds": run["train_seconds"], "epochs_run": run["epochs_run"],
            "truncated": run["truncated"], "config": {k: run["config"].get(k) for k in keys},
            "metrics": run["metrics"], "machine": run["machine"]}
    start = Path(run["config"].get("model") or "")
    if (start.parent / "run.json").is_file():  # trained on top of an earlier run's model
        info["started_from"] = _training(start.parent)
    return info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/ml-100k")
    parser.add_argument("--shots", type=int, default=None, help="training examples in all (default: all)")
    parser.add_argument("--epochs", type=float, help="default: 1 with all examples, 10 with --shots")
    parser.add_argument("--model", help="start from this model (default: all-MiniLM-L6-v2), e.g. runs/X/model")
    parser.add_argument("--name", help="the run's name (default: ml100k-full or ml100k-SHOTS)")
    parser.add_argument("--learning-rate", type=float, help="default: rec-edge train's")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--run", help="an existing run folder: skip training")
    parser.add_argument("--bundle", help="an existing bundle: skip training and export")
    parser.add_argument("--latency-users", type=int, default=200)
    parser.add_argument("--requests", help="also write the ranking cases as rank requests (JSONL, "
                        "field target) for `rec-edge bench`; keep it out of git (MovieLens licence)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    name = args.name or f"ml100k-{args.shots or 'full'}"
    bundle = args.bundle
    run_dir = args.run
    if not bundle:
        if not run_dir:
            config = TrainConfig(train_file=args.data, task="rank", shots=args.shots,
                                 epochs=args.epochs or (10 if args.shots else 1),
                                 name=name, max_length=128, model=args.model,
                                 learning_rate=args.learning_rate, seed=args.seed,
                                 validation_limit=300 if args.shots else 1000, dropout=0.0,
                                 lora_dropout=0.0, early_stopping_patience=None, force=True)
            run_dir = str(train(config).run_dir)
        elif not (Path(run_dir) / COLLAB_FILE).is_file():  # a run from before the stage existed
            print(f"fitting the collaborative tables of {run_dir}")
            fit_collaborative(run_dir)
        bundle = str(export(ExportConfig(run_dir=run_dir, out=f"exports/{Path(run_dir).name}", force=True)).bundle_dir)
    predictor = Predictor.load(bundle)
    run_info = predictor.manifest.source
    tables = predictor.collaborative
    print("collaborative tables:", "none" if tables is None else f"dim {tables.dim}")

    data = read_interactions(args.data)
    splits = pointwise_splits(data)
    render = predictor.templates.preference_renderer()
    test = splits["test"]
    users = [render(e.preference.liked, e.preference.disliked) for e in test]
    unique = list(dict.fromkeys(users + [e.candidate for e in test]))
    rows = dict(zip(unique, predictor.logits(unique, batch_size=64), strict=True))
    text = pair_scores(np.stack([rows[u] for u in users]), np.stack([rows[e.candidate] for e in test]))
    labels = [int(e.label == "yes") for e in test]

    def like(e: PointwiseExample, t: float) -> float:  # Predictor.score's logit: text + the tables' like terms
        return float(add_tables(tables, e.preference.liked, e.preference.disliked, [e.candidate], np.array([t]))[0][0])

    pointwise = pair_report(labels, np.array([like(e, t) for e, t in zip(test, text, strict=True)]))
    parts = {"text alone": {"AUC": roc_auc(labels, text.tolist())}}
    if tables is not None:  # the bundle's two parts, each on its own
        parts["tables alone"] = {"AUC": roc_auc(labels, [like(e, 0.0) for e in test])}

    cases = ranking_cases(data)
    if args.requests:
        Path(args.requests).write_text("".join(json.dumps({
            "liked": c.preference.liked, "disliked": c.preference.disliked,
            "candidates": [data.titles[i] for i in c.candidates], "target": data.titles[c.target]}) + "\n"
            for c in cases), encoding="utf-8")
    orders: dict[str, list[list[str]]] = {"model": [], "text alone": [], "tables alone": []}
    for case in cases:
        liked, disliked = case.preference.liked, case.preference.disliked
        titles = [data.titles[item] for item in case.candidates]
        ranked = predictor.rank({"liked": liked, "disliked": disliked}, titles)
        at = {t: i for i, t in enumerate(titles)}
        orders["model"].append([case.candidates[at[r.item]] for r in ranked])
        user = predictor.logits([render(liked, disliked)])[0]
        values = {"text alone": pair_scores(user, predictor.item_outputs(titles))}
        if tables is not None:
            values["tables alone"] = rank_values(*add_tables(tables, liked, disliked, titles, np.zeros(len(titles))))
        for key, v in values.items():
            orders[key].append([case.candidates[i] for i in np.argsort(-v, kind="stable")])
    targets = [c.target for c in cases]
    model_rank = ranking_metrics(orders.pop("model"), targets)
    rank_parts = {k: ranking_metrics(v, targets) for k, v in orders.items() if v}

    # latency: every candidate encoded (no item index, no cache) and the bundle's item index, interleaved
    engines = {"encoded": Predictor.load(bundle, item_cache=0, catalog=False), "item index": predictor}
    timings: dict[str, list[float]] = {k: [] for k in engines}
    sample = cases[: args.latency_users]
    for case in sample:
        history = {"liked": case.preference.liked, "disliked": case.preference.disliked}
        titles = [data.titles[item] for item in case.candidates]
        for key, engine in engines.items():
            start = time.perf_counter()
            engine.rank(history, titles)
            timings[key].append(time.perf_counter() - start)
    latency = {k: LatencyStats.from_samples(v, items=20).to_dict() for k, v in timings.items()}

    result = {
        "bundle": str(bundle), "run": run_info.get("run_name"), "recipe": predictor.manifest.recipe["name"],
        "training": _training(Path(run_info["run"])),
        "collaborative": run_info.get("collaborative"),
        "pointwise_test": {**pointwise, "parts": parts, "baselines": {
            **pointwise_baselines(data, splits["train"], test),
            **collaborative_pointwise_baselines(data, splits["train"], test)}},
        "ranking": {"users": len(cases), "model": model_rank, "parts": rank_parts, "baselines": {
            **rank_baselines(data, cases), **collaborative_rank_baselines(data, cases)}},
        "rank20_latency": latency, "threads": "onnxruntime default (all cores)",
        "machine": machine(), "versions": versions(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ml100k.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"pointwise test (n={pointwise['n']}): AUC {pointwise['auc']:.4f}")
    for base, m in [*parts.items(), *result["pointwise_test"]["baselines"].items()]:
        print(f"  {base:<34} AUC {m['AUC']:.4f}")
    print(f"ranking ({len(cases)} users, 20 candidates):")
    for who, m in [("model", model_rank), *rank_parts.items(), *result["ranking"]["baselines"].items()]:
        print(f"  {who:<34} HR@1 {m['HR@1']:.3f}  HR@5 {m['HR@5']:.3f}  NDCG@10 {m['NDCG@10']:.3f}")
    for key, stats in latency.items():
        print(f"rank 20 candidates, {key}: p50 {stats['p50'] * 1e3:.1f} ms  p95 {stats['p95'] * 1e3:.1f} ms  "
              f"p99 {stats['p99'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
