"""The collaborative stage's bulk encoding: PyTorch fp32 against the int8 onnxruntime session
(rec_edge.convert.bulk), on the same rows of a finished MovieLens rank run, in one sitting: the
seconds spent encoding and the fitted tables' validation AUC with each.

    python benchmarks/collab_encoding.py --run runs/ml100k-demo --shots 16384 \
        --out benchmarks/results/train-speed/collab-encoding.json

The run's model is copied with ``shots`` changed (the rows the tables fit on), so the run itself
is untouched. MovieLens-100K: from the recbole wheel (`make data`), never committed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rec_edge.recommend.collab import TEXT_CACHE, CollabConfig, fit_collaborative
from rec_edge.versions import machine, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=Path("runs/ml100k-demo"))
    parser.add_argument("--shots", type=int, default=16384, help="training rows the tables fit on")
    parser.add_argument("--work", type=Path, default=Path("runs/collab-encoding"))
    parser.add_argument("--engines", default="torch,int8")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train-speed/collab-encoding.json"))
    args = parser.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.run, args.work)
    (args.work / TEXT_CACHE).unlink(missing_ok=True)
    record = json.loads((args.work / "run.json").read_text())
    record["config"]["shots"] = args.shots
    (args.work / "run.json").write_text(json.dumps(record, indent=2))

    results: dict[str, object] = {"run": str(args.run), "shots": args.shots, "machine": machine(), "versions": versions()}
    for engine in args.engines.split(","):
        started = time.perf_counter()
        stage = fit_collaborative(args.work, CollabConfig(engine=engine))
        keys = ("rows", "validation_auc", "validation_auc_text_only", "best_epoch", "encode_seconds", "fit_seconds")
        results[engine] = {**{k: stage[k] for k in keys}, "wall_seconds": round(time.perf_counter() - started, 1)}
        print(engine, json.dumps(results[engine]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
