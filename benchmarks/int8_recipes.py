"""Each int8 recipe of a trained classify run against fp32, on its training, validation and test
texts: accuracy, labels changed against fp32, and the shift (mean over the texts of the largest
probability change), the gate's choice measure. Shows whether a recipe's validation figures
predict its test figures (benchmarks/RESULTS.md, "int8 on long inputs").

    python benchmarks/int8_recipes.py RUN_DIR SAMPLE_DIR WORK_DIR --label "drugs K=64 seed 0" \
        >> benchmarks/results/int8-fidelity/recipes.jsonl

SAMPLE_DIR holds train.jsonl, validation.jsonl and test.jsonl (text, label), as fewshot.py writes
them; WORK_DIR gets the fp32 bundle and one graph per recipe.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from rec_edge.bundle import Bundle, Manifest, load_bundle
from rec_edge.config import ExportConfig
from rec_edge.convert.quantize import RECIPES, quantize
from rec_edge.export import export
from rec_edge.export.pipeline import _calibration
from rec_edge.runtime import Predictor, SessionConfig
from rec_edge.runtime.outputs import softmax
from rec_edge.runtime.tokenize import BundleTokenizer

SPLITS = ("train", "validation", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("sample_dir")
    parser.add_argument("work_dir")
    parser.add_argument("--label", default="", help="names the run in each output line")
    parser.add_argument(
        "--recipes", default="calibrated-per-channel,calibrated-per-channel-rr,calibrated"
    )
    args = parser.parse_args()
    sample, work = Path(args.sample_dir), Path(args.work_dir)
    rows = {s: [json.loads(line) for line in (sample / f"{s}.jsonl").open()] for s in SPLITS}
    fp32_dir = work / "fp32"
    export(
        ExportConfig(run_dir=args.run_dir, out=str(fp32_dir), quantize="fp32", force=True),
        log=lambda _: None,
    )
    bundle = load_bundle(fp32_dir)
    labels = bundle.manifest.labels
    texts = {s: [r["text"] for r in rows[s]] for s in SPLITS}
    gold = {s: np.array([labels.index(str(r["label"])) for r in rows[s]]) for s in SPLITS}

    def predictor(model: Path) -> Predictor:
        if not (model.parent / "tokenizer.json").exists():
            shutil.copy(fp32_dir / "tokenizer.json", model.parent)
        manifest = Manifest(**{**bundle.manifest.__dict__, "model_file": model.name})
        return Predictor(
            Bundle(model.parent, manifest), SessionConfig(graph_optimization_level="all")
        )

    reference = predictor(fp32_dir / "model.onnx")
    fp32 = {s: softmax(reference.logits(texts[s])) for s in SPLITS}
    tokenizer = BundleTokenizer(fp32_dir / "tokenizer.json", bundle.manifest.max_length)
    # the export's own calibration: up to 256 training texts
    calibration = _calibration(
        texts["train"][:256], tokenizer, reference.render, bundle.manifest.inputs
    )

    def line(recipe: str, probabilities: dict[str, np.ndarray]) -> str:
        record: dict[str, object] = {"run": args.label, "recipe": recipe}
        for s in SPLITS:
            p, q = probabilities[s], fp32[s]
            record[f"{s}_acc"] = round(float((p.argmax(-1) == gold[s]).mean()), 4)
            record[f"{s}_flips"] = int((p.argmax(-1) != q.argmax(-1)).sum())
            record[f"{s}_dp"] = float(f"{np.abs(p - q).max(-1).mean():.4g}")
        return json.dumps(record)

    print(line("fp32", fp32), flush=True)
    for name in args.recipes.split(","):
        path = work / name / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        quantize(fp32_dir / "model.onnx", path, RECIPES[name], calibration)
        candidate = predictor(path)
        print(line(name, {s: softmax(candidate.logits(texts[s])) for s in SPLITS}), flush=True)


if __name__ == "__main__":
    main()
