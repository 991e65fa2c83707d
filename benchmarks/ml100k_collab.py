"""How the collaborative tables' settings were chosen: a grid of CollabConfig fitted on a rank
run's own training rows (the encoder's scores kept from its collaborative stage), each epoch
chosen on the stage's validation sample, compared on the validation rows outside that sample.
The test split is not read.

    python benchmarks/ml100k_collab.py --run runs/ml100k-full2 --out benchmarks/results/ml100k-collab
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rec_edge.config import TrainConfig
from rec_edge.data.tasks import rank_rows
from rec_edge.metrics import roc_auc
from rec_edge.recommend.collab import CollabConfig, choosing_rows, fit_tables, text_scores
from rec_edge.recommend.tables import add_tables
from rec_edge.versions import machine, versions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    run_dir = Path(args.run)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    train_config = TrainConfig(**run["config"])
    data, splits = rank_rows(train_config)
    train, validation = splits["train"], splits["validation"]
    base = CollabConfig()
    chooser = choosing_rows(validation, base)  # the stage's own
    chosen = {id(r) for r in chooser}
    held = [r for r in validation if id(r) not in chosen]
    titles = sorted(set(data.titles.values()))
    text = text_scores(run_dir, run, train + chooser, titles)  # the stage's own, kept
    held_text = text_scores(run_dir, run, held, titles, cache="collab_text_held.npz")
    labels = [int(r.label == "yes") for r in held]
    rows = []
    print(f"{len(train)} training rows, {len(chooser)} choose the epoch, {len(held)} compare")
    for dim, l2, rate in itertools.product([16, 32, 64], [1e-3, 1e-2], [1e-3, 3e-3]):
        config = replace(base, dim=dim, l2=l2, learning_rate=rate, epochs=12, patience=2)
        started = time.perf_counter()
        tables, record = fit_tables(
            data, train, chooser, text[: len(train)], text[len(train) :], train_config.history, config
        )
        like = [
            add_tables(tables, r.preference.liked, r.preference.disliked, [r.candidate], np.array([t]))[0][0]
            for r, t in zip(held, held_text, strict=True)
        ]
        row = {"config": asdict(config), "best_epoch": record["best_epoch"],
               "choosing_auc": record["validation_auc"], "held_out_auc": roc_auc(labels, like),
               "seconds": round(time.perf_counter() - started, 1)}
        rows.append(row)
        print(f"dim {dim:>2}  l2 {l2:.0e}  rate {rate:.0e}  epoch {row['best_epoch']:>2}  "
              f"choosing {row['choosing_auc']:.4f}  held out {row['held_out_auc']:.4f}")
    result = {"run": str(run_dir), "text_only_held_out_auc": roc_auc(labels, held_text.tolist()),
              "rows": rows, "machine": machine(), "versions": versions()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "collab_grid.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"text alone, held out: {result['text_only_held_out_auc']:.4f}")


if __name__ == "__main__":
    main()
