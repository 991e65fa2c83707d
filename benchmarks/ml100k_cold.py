"""MovieLens-100K, new items (cold start): 20% of the titles are held out entirely (every rating of
theirs removed from training; seeded), a rank bundle is trained and exported on the rest, and the
held-out titles are scored as titles the bundle has never seen:

- pointwise: AUC on the test split's ratings of the new titles (TALLRec protocol, the history the
  10 titles rated before, new ones included);
- ranking: each user's last liked new title among 19 new titles the user never rated.

Baselines in the same run: random; most popular among the new titles by their ratings in the
whole data set (an oracle: no system knows the counts of titles nobody has rated yet); and a
content model from scikit-learn: TF-IDF of title + year + genres, the user's profile the mean of
the liked history titles' vectors, scored by cosine.

    python benchmarks/ml100k_cold.py --shots 1024 --seeds 3 --out benchmarks/results/ml100k-cold
    python benchmarks/ml100k_cold.py --shots 1024 --seeds 3 --item-template "{title} ({year}), {genres}" \
        --out benchmarks/results/ml100k-cold-items

Each seed draws its own held-out titles and training rows; OUT/seed-S.json and OUT/summary.json.
The split's files are written under runs/ (MovieLens' licence forbids redistribution).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge import ExportConfig, Predictor, TrainConfig, export, train
from rec_edge.metrics import ranking_metrics, roc_auc
from rec_edge.recommend.interactions import InteractionData, read_interactions
from rec_edge.recommend.protocols import hold_out_items, new_item_cases, pointwise_splits
from rec_edge.versions import machine, versions

BASELINES = ("random", "most popular (oracle)", "TF-IDF content")


def write_warm(data: InteractionData, cold: set[str], folder: Path) -> tuple[Path, Path]:
    """The training data a system has before the new titles arrive: JSONL interactions without
    any rating of theirs, and the other titles with their fields."""
    folder.mkdir(parents=True, exist_ok=True)
    inter, items = folder / "inter.jsonl", folder / "items.jsonl"
    inter.write_text("".join(
        json.dumps({"user": r.user, "item": r.item, "rating": r.rating, "timestamp": r.timestamp}) + "\n"
        for r in data.interactions if r.item not in cold), encoding="utf-8")
    items.write_text("".join(
        json.dumps({"item": item, **{k: data.fields[item].get(k, "") for k in ("title", "year", "genres")}}) + "\n"
        for item in sorted(data.titles) if item not in cold), encoding="utf-8")
    return inter, items


class Content:
    """TF-IDF of title + year + genres; a user's profile is the mean of the liked history titles."""

    def __init__(self, data: InteractionData):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.items = sorted(data.titles)
        text = [" ".join(data.fields[i].get(k, "") for k in ("title", "year", "genres")) for i in self.items]
        self.vectors = TfidfVectorizer(sublinear_tf=True).fit_transform(text)
        self.row = {item: n for n, item in enumerate(self.items)}
        self.by_text = {}
        for item in self.items:
            self.by_text.setdefault(data.titles[item], item)

    def scores(self, liked: list[str], items: list[str]) -> np.ndarray:
        rows = [self.row[self.by_text[t]] for t in liked if t in self.by_text]
        if not rows:
            return np.zeros(len(items))
        profile = np.asarray(self.vectors[rows].mean(0)).ravel()
        return np.asarray(self.vectors[[self.row[i] for i in items]] @ profile).ravel()


def train_bundle(args: argparse.Namespace, seed: int, data: InteractionData, cold: set[str]) -> str:
    name = f"{args.name}-seed{seed}"
    if args.reuse and (Path("exports") / name / "rec_edge.json").is_file():  # the split is seeded
        return str(Path("exports") / name)
    inter, items = write_warm(data, cold, Path("runs") / f"{name}-data")
    config = TrainConfig(train_file=str(inter), items_file=str(items), task="rank", shots=args.shots,
                         epochs=args.epochs, name=name, max_length=128, seed=seed, validation_limit=300,
                         dropout=0.0, lora_dropout=0.0, early_stopping_patience=None,
                         item_template=args.item_template, rank_test=False, force=True)
    run_dir = train(config).run_dir
    return str(export(ExportConfig(run_dir=str(run_dir), out=f"exports/{name}", force=True)).bundle_dir)


def evaluate(args: argparse.Namespace, seed: int, data: InteractionData) -> dict[str, Any]:
    cold = hold_out_items(data, args.fraction, seed)
    bundle = train_bundle(args, seed, data, cold)
    predictor = Predictor.load(bundle)
    assert not set(predictor.catalog) & {data.titles[i] for i in cold}, "a new title is in the catalog"
    content = Content(data)
    counts: dict[str, int] = {}
    for r in data.interactions:
        counts[r.item] = counts.get(r.item, 0) + 1
    rng = random.Random(seed)
    # pointwise: the test split's ratings of new titles
    test = [e for e in pointwise_splits(data)["test"] if e.item in cold]
    labels = [int(e.label == "yes") for e in test]
    scores: dict[str, list[float]] = {"bundle": [], **{b: [] for b in BASELINES}}
    for e in test:
        history = {"liked": e.preference.liked, "disliked": e.preference.disliked}
        scores["bundle"].append(float(predictor.score(history, [e.candidate])[0]))
        scores["random"].append(rng.random())
        scores["most popular (oracle)"].append(counts[e.item])
        scores["TF-IDF content"].append(float(content.scores(e.preference.liked, [e.item])[0]))
    pointwise = {k: roc_auc(labels, v) for k, v in scores.items()}
    # ranking: the last liked new title among 19 new titles the user never rated
    cases = new_item_cases(data, cold, seed=seed)
    orders: dict[str, list[list[str]]] = {"bundle": [], **{b: [] for b in BASELINES}}
    for case in cases:
        p, items = case.preference, case.candidates
        titles = [data.titles[i] for i in items]
        slots: dict[str, list[int]] = {}  # two new items may share a title (and so their score)
        for n, t in enumerate(titles):
            slots.setdefault(t, []).append(n)
        ranked = predictor.rank({"liked": p.liked, "disliked": p.disliked}, titles)
        orders["bundle"].append([items[slots[r.item].pop(0)] for r in ranked])
        orders["random"].append(rng.sample(items, len(items)))
        pop = [counts[i] - (i == case.target) for i in items]  # the target's own rating not counted
        orders["most popular (oracle)"].append([items[i] for i in np.argsort(-np.array(pop), kind="stable")])
        orders["TF-IDF content"].append([items[i] for i in np.argsort(-content.scores(p.liked, items), kind="stable")])
    targets = [c.target for c in cases]
    ranking = {k: ranking_metrics(v, targets) for k, v in orders.items()}
    source = predictor.manifest.source
    return {"seed": seed, "bundle": bundle, "new_titles": len(cold), "item_template": args.item_template,
            "training": {"shots": args.shots, "epochs": args.epochs,
                         "train_seconds": json.loads((Path(source["run"]) / "run.json").read_text())["train_seconds"]},
            "stack": (source.get("collaborative") or {}).get("stack"),
            "pointwise": {"n": len(test), "positives": sum(labels), "AUC": pointwise},
            "ranking": {"users": len(cases), **ranking}, "machine": machine(), "versions": versions()}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}

    systems = results[0]["pointwise"]["AUC"]
    return {"seeds": [r["seed"] for r in results],
            "AUC": {k: spread([r["pointwise"]["AUC"][k] for r in results]) for k in systems},
            **{m: {k: spread([r["ranking"][k][m] for r in results]) for k in systems} for m in ("HR@1", "NDCG@10")},
            "train_seconds": spread([r["training"]["train_seconds"] for r in results])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/ml-100k")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--fraction", type=float, default=0.2, help="of the titles held out as new")
    parser.add_argument("--item-template", help="rec-edge train --item-template")
    parser.add_argument("--name", default="ml100k-cold")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="evaluate exports/NAME-seedS if it is there")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = read_interactions(args.data, item_template=args.item_template)
    results = []
    for seed in range(args.seed, args.seed + args.seeds):
        path = out / f"seed-{seed}.json"
        if not path.is_file():
            result = evaluate(args, seed, data)
            path.write_text(json.dumps(result, indent=1), encoding="utf-8")
            print(f"seed {seed}: " + json.dumps({"AUC": result["pointwise"]["AUC"],
                  "NDCG@10": {k: v["NDCG@10"] for k, v in result["ranking"].items() if k != "users"}}))
        results.append(json.loads(path.read_text(encoding="utf-8")))
    (out / "summary.json").write_text(json.dumps(summarize(results), indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
