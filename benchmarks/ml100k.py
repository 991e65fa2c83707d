"""MovieLens-100K as instruction following: train (TALLRec pointwise pairs, then the collaborative
tables and the stack), export (int8 gate), then in one evaluation run the bundle's test AUC, its
leave-one-out ranking over 20 candidates, each of its parts alone (the text towers, the tables, the
counts), the baselines (random, most popular, rating biases, item-kNN and ALS from `implicit`, two
counts and a GBDT on the bundle's own rows), and the latency of ranking 20 candidates for one
user, with every candidate encoded and from the bundle's item index, interleaved.

    python benchmarks/ml100k.py --shots 64 --seeds 3 --out benchmarks/results/ml100k-64
    python benchmarks/ml100k.py --run runs/ml100k-full --out benchmarks/results/ml100k-full

Each seed draws its own training rows and writes OUT/seed-S.json; OUT/summary.json holds the
mean and standard deviation over the seeds. ``--run`` on a run without tables (or without a
stack) fits them first. MovieLens-100K comes from the recbole wheel (`make data`); its licence
forbids redistribution.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge import ExportConfig, Predictor, TrainConfig, export, train
from rec_edge.bench.stats import LatencyStats
from rec_edge.data.tasks import rank_rows
from rec_edge.metrics import pair_report, ranking_metrics, roc_auc
from rec_edge.recommend.baselines import (
    collaborative_pointwise_baselines,
    collaborative_rank_baselines,
    count_baselines,
    pointwise_baselines,
    rank_baselines,
)
from rec_edge.recommend.collab import COLLAB_FILE, CollabConfig, choosing_rows, fit_collaborative
from rec_edge.recommend.interactions import InteractionData, read_interactions
from rec_edge.recommend.protocols import PointwiseExample, pointwise_splits, ranking_cases
from rec_edge.recommend.tables import add_tables, rank_values
from rec_edge.runtime.ranker import pair_scores
from rec_edge.versions import machine, versions

RUN_KEYS = ("model", "shots", "epochs", "max_length", "learning_rate", "lora_r", "dropout",
            "lora_dropout", "negatives", "seed", "item_template")


def _training(run_dir: Path) -> dict[str, Any]:
    """What the bundle was trained on, from its run.json (if the run folder is still there)."""
    path = run_dir / "run.json"
    if not path.is_file():
        return {"run": str(run_dir), "note": "run.json not found"}
    run = json.loads(path.read_text(encoding="utf-8"))
    info = {"counts": run["counts"], "train_seconds": run["train_seconds"], "epochs_run": run["epochs_run"],
            "truncated": run["truncated"], "config": {k: run["config"].get(k) for k in RUN_KEYS},
            "metrics": run["metrics"], "machine": run["machine"]}
    start = Path(run["config"].get("model") or "")
    if (start.parent / "run.json").is_file():  # trained on top of an earlier run's model
        info["started_from"] = _training(start.parent)
    return info


def train_bundle(args: argparse.Namespace, seed: int) -> tuple[str, Path]:
    """The bundle to evaluate and its run folder: trained and exported unless given."""
    if args.bundle:
        bundle = Path(args.bundle)
        return str(bundle), Path(Predictor.load(bundle).manifest.source["run"])
    run_dir = args.run
    if not run_dir:
        name = args.name or f"ml100k-{args.shots or 'full'}"
        config = TrainConfig(train_file=args.data, task="rank", shots=args.shots,
                             epochs=args.epochs or (10 if args.shots else 1),
                             name=f"{name}-seed{seed}", max_length=args.max_length, model=args.model,
                             learning_rate=args.learning_rate, seed=seed,
                             validation_limit=300 if args.shots else 3000, dropout=0.0,
                             lora_dropout=0.0, early_stopping_patience=None,
                             item_template=args.item_template, rank_test=False, force=True)
        run_dir = str(train(config).run_dir)
    else:
        run = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
        if not (Path(run_dir) / COLLAB_FILE).is_file() or "stack" not in run.get("collaborative", {}):
            print(f"fitting the collaborative tables and the stack of {run_dir}")
            fit_collaborative(run_dir)
    out = f"exports/{Path(run_dir).name}"
    bundle = export(ExportConfig(run_dir=run_dir, out=out, quantize=args.quantize, force=True)).bundle_dir
    return str(bundle), Path(run_dir)


def bundle_rows(run_dir: Path) -> tuple[list[PointwiseExample], list[PointwiseExample]]:
    """The training rows the bundle's run had, and the validation rows its stack was fitted on."""
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    config = TrainConfig(**run["config"])
    _, splits = rank_rows(config)
    return splits["train"], choosing_rows(splits["validation"], CollabConfig(), config.validation_limit)


def pointwise(predictor: Predictor, data: InteractionData, run_dir: Path, seed: int) -> dict[str, Any]:
    """The TALLRec test AUC of the bundle, of each of its parts, and of the baselines."""
    splits = pointwise_splits(data)
    test = splits["test"]
    render = predictor.templates.preference_renderer()
    users = [render(e.preference.liked, e.preference.disliked) for e in test]
    items = predictor.item_outputs(list(dict.fromkeys(e.candidate for e in test)))
    item_rows = dict(zip(dict.fromkeys(e.candidate for e in test), items, strict=True))
    unique = list(dict.fromkeys(users))
    user_rows = dict(zip(unique, predictor.logits(unique, batch_size=64), strict=True))
    text = pair_scores(np.stack([user_rows[u] for u in users]), np.stack([item_rows[e.candidate] for e in test]))
    labels = [int(e.label == "yes") for e in test]
    tables = predictor.collaborative
    like = [float(add_tables(tables, e.preference.liked, e.preference.disliked, [e.candidate], np.array([t]))[0][0])
            for e, t in zip(test, text, strict=True)]
    parts = {"text alone": {"AUC": roc_auc(labels, text.tolist())}}
    if tables is not None:  # the tables' own like terms, without the text or the counts
        terms = [float(tables.like(tables.user(e.preference.liked, e.preference.disliked), [e.candidate])[0])
                 for e in test]
        parts["tables alone"] = {"AUC": roc_auc(labels, terms)}
    train_rows, fit_rows = bundle_rows(run_dir)
    baselines = {**count_baselines(train_rows, fit_rows, test, seed),
                 **{f"{k} (all training rows)": v for k, v in pointwise_baselines(data, splits["train"], test).items()},
                 **collaborative_pointwise_baselines(data, splits["train"], test)}
    return {**pair_report(labels, np.array(like)), "parts": parts, "baselines": baselines,
            "rows": {"train": len(train_rows), "stack validation": len(fit_rows)}}


def ranking(predictor: Predictor, data: InteractionData) -> dict[str, Any]:
    """Leave-one-out over 20 candidates: the bundle, its parts, the baselines."""
    cases = ranking_cases(data)
    render = predictor.templates.preference_renderer()
    tables = predictor.collaborative
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
            terms = tables.user(liked, disliked)
            values["tables alone"] = rank_values(tables.like(terms, titles), tables.exposure(terms, titles))
        for key, v in values.items():
            orders[key].append([case.candidates[i] for i in np.argsort(-v, kind="stable")])
    targets = [c.target for c in cases]
    model = ranking_metrics(orders.pop("model"), targets)
    return {"users": len(cases), "model": model,
            "parts": {k: ranking_metrics(v, targets) for k, v in orders.items() if v},
            "baselines": {**rank_baselines(data, cases), **collaborative_rank_baselines(data, cases)}}


def latency(bundle: str, predictor: Predictor, data: InteractionData, users: int) -> dict[str, Any]:
    """Ranking 20 candidates for one user: every candidate encoded vs the item index, interleaved."""
    engines = {"encoded": Predictor.load(bundle, item_cache=0, catalog=False), "item index": predictor}
    timings: dict[str, list[float]] = {k: [] for k in engines}
    for case in ranking_cases(data)[:users]:
        history = {"liked": case.preference.liked, "disliked": case.preference.disliked}
        titles = [data.titles[item] for item in case.candidates]
        for key, engine in engines.items():
            start = time.perf_counter()
            engine.rank(history, titles)
            timings[key].append(time.perf_counter() - start)
    return {k: LatencyStats.from_samples(v, items=20).to_dict() for k, v in timings.items()}


def evaluate(args: argparse.Namespace, seed: int, data: InteractionData) -> dict[str, Any]:
    bundle, run_dir = train_bundle(args, seed)
    predictor = Predictor.load(bundle)
    source = predictor.manifest.source
    result: dict[str, Any] = {
        "seed": seed, "bundle": bundle, "run": source.get("run_name"), "recipe": predictor.manifest.recipe["name"],
        "training": _training(run_dir), "collaborative": source.get("collaborative"),
        "pointwise_test": pointwise(predictor, data, run_dir, seed), "ranking": ranking(predictor, data),
    }
    if args.latency_users:
        result["rank20_latency"] = latency(bundle, predictor, data, args.latency_users)
        result["threads"] = "onnxruntime default (all cores)"
    return {**result, "machine": machine(), "versions": versions()}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over the seeds of every AUC and ranking figure."""
    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values)}

    def auc(r: dict[str, Any]) -> dict[str, float]:
        p = r["pointwise_test"]
        return {"model": p["auc"], **{k: v["AUC"] for k, v in {**p["parts"], **p["baselines"]}.items()}}

    def ndcg(r: dict[str, Any]) -> dict[str, float]:
        g = r["ranking"]
        return {"model": g["model"]["NDCG@10"], **{k: v["NDCG@10"] for k, v in {**g["parts"], **g["baselines"]}.items()}}

    out: dict[str, Any] = {"seeds": [r["seed"] for r in results]}
    for name, get in (("AUC", auc), ("NDCG@10", ndcg)):
        rows = [get(r) for r in results]
        out[name] = {k: spread([row[k] for row in rows if k in row]) for k in rows[0]}
    out["train_seconds"] = spread([r["training"].get("train_seconds", 0.0) for r in results])
    out["stack_chosen"] = [(r.get("collaborative") or {}).get("stack", {}).get("like", {}).get("chosen") for r in results]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/ml-100k")
    parser.add_argument("--shots", type=int, default=None, help="training examples in all (default: all)")
    parser.add_argument("--epochs", type=float, help="default: 1 with all examples, 10 with --shots")
    parser.add_argument("--model", help="start from this model (default: all-MiniLM-L6-v2), e.g. runs/X/model")
    parser.add_argument("--name", help="the run's name (default: ml100k-full or ml100k-SHOTS), -seedS added")
    parser.add_argument("--item-template", help="rec-edge train --item-template")
    parser.add_argument("--max-length", type=int, default=128,
                        help="rec-edge train --max-length (128 holds ten bare titles; a template needs more)")
    parser.add_argument("--learning-rate", type=float, help="default: rec-edge train's")
    parser.add_argument("--quantize", default="auto", help="rec-edge export --quantize (auto: the gate's choice)")
    parser.add_argument("--seed", type=int, default=42, help="the first seed")
    parser.add_argument("--seeds", type=int, default=1, help="seeds SEED, SEED+1, ... (each its own rows)")
    parser.add_argument("--run", help="an existing run folder: skip training (one seed)")
    parser.add_argument("--bundle", help="an existing bundle: skip training and export (one seed)")
    parser.add_argument("--latency-users", type=int, default=200, help="0: no latency (first seed only)")
    parser.add_argument("--requests", help="also write the ranking cases as rank requests (JSONL, "
                        "field target) for `rec-edge bench`; keep it out of git (MovieLens licence)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = read_interactions(args.data, item_template=args.item_template)
    if args.requests:
        Path(args.requests).write_text("".join(json.dumps({
            "liked": c.preference.liked, "disliked": c.preference.disliked,
            "candidates": [data.titles[i] for i in c.candidates], "target": data.titles[c.target]}) + "\n"
            for c in ranking_cases(data)), encoding="utf-8")
    results = []
    for n in range(1 if args.run or args.bundle else args.seeds):
        seed = args.seed + n
        path = out / f"seed-{seed}.json"
        if path.is_file():  # resumes an interrupted benchmark
            results.append(json.loads(path.read_text(encoding="utf-8")))
            continue
        result = evaluate(args, seed, data)
        args.latency_users = 0  # the first seed's latency stands for all
        path.write_text(json.dumps(result, indent=1), encoding="utf-8")
        results.append(result)
        p, g = result["pointwise_test"], result["ranking"]
        print(f"seed {seed}: AUC {p['auc']:.4f}  NDCG@10 {g['model']['NDCG@10']:.4f}  "
              f"stack: {' + '.join((result['collaborative'] or {}).get('stack', {}).get('like', {}).get('chosen', []))}")
        for name, m in [*p["parts"].items(), *p["baselines"].items()]:
            print(f"  {name:<46} AUC {m['AUC']:.4f}")
        for name, m in [*g["parts"].items(), *g["baselines"].items()]:
            print(f"  {name:<46} NDCG@10 {m['NDCG@10']:.4f}")
    (out / "summary.json").write_text(json.dumps(summarize(results), indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
