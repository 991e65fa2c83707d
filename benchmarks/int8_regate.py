"""Re-export trained classify runs through today's gate (`rec-edge export`, defaults) and score
the int8 bundle on a test file: what the gate now ships for runs trained earlier
(benchmarks/RESULTS.md, "The gate's allowance on small validation sets").

    python benchmarks/int8_regate.py RUN_DIR... --test runs/fewshot/drugs/test.jsonl \
        --work /tmp/regate >> benchmarks/results/int8-fidelity/regate.jsonl

One JSON line per run: its PyTorch test accuracy (run.json), the int8 bundle's, the recipe kept
and the gate's log lines.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fewshot import read_rows

from rec_edge import Predictor
from rec_edge.config import ExportConfig
from rec_edge.export import export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="trained classify run folders")
    parser.add_argument("--test", required=True, help="JSONL with text and label")
    parser.add_argument("--work", required=True, help="where the bundles go")
    args = parser.parse_args()
    test = read_rows(args.test, "text", "label")
    for run in map(Path, args.runs):
        run_json = json.loads((run / "run.json").read_text(encoding="utf-8"))
        lines: list[str] = []
        config = ExportConfig(
            run_dir=str(run),
            out=str(Path(args.work) / run.name),
            force=True,
            seed=run_json["config"]["seed"],
        )
        bundle = export(config, log=lines.append).bundle_dir
        predictor = Predictor.load(bundle)
        predicted = [p.label for p in predictor.predict([r["text"] for r in test])]
        int8 = sum(p == r["label"] for p, r in zip(predicted, test, strict=True)) / len(test)
        print(
            json.dumps(
                {
                    "run": run.name,
                    "seed": run_json["config"]["seed"],
                    "pytorch": run_json["metrics"]["test"]["accuracy"],
                    "int8": int8,
                    "recipe": predictor.manifest.recipe.get("name"),
                    "gate": [line for line in lines if "pts" in line],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
