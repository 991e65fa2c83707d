#!/usr/bin/env bash
# The demo: train -> export -> predict on BBC News topics, on the embedded default model
# (all-MiniLM-L6-v2), offline. Called by `make demo` after the install and the data download.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }
export TOKENIZERS_PARALLELISM=false

# A quarter of the articles is held out: the export's accuracy gate needs enough of them to tell
# a 1-point drop from noise (one article of 445 is 0.22 points).
step "1/4 train: LoRA on all-MiniLM-L6-v2, 32 articles per topic, through instruction templates"
rec-edge train data/bbc/train.jsonl --test-file data/bbc/test.jsonl --name bbc-demo --force \
  --shots 32 --epochs 4 --max-length 96 --validation-fraction 0.25 \
  --instruction "Which section of the news does this article belong to?" >runs/bbc-demo.train.log 2>&1 \
  || { tail -n 20 runs/bbc-demo.train.log; exit 1; }
grep -E "^(run written|validation|test|skipped)" runs/bbc-demo.train.log

step "2/4 export: ONNX (optimum) -> portable fusions -> int8 with the accuracy gate -> exports/bbc-demo"
rec-edge export runs/bbc-demo --out exports/bbc-demo --force 2>/dev/null
ls -l exports/bbc-demo

step "3/4 predict: torch-free (onnxruntime + tokenizers + numpy)"
rec-edge predict exports/bbc-demo \
  "Shares in the carmaker fell after it cut its profit forecast for the year." \
  "The striker scored twice as the champions went top of the league." \
  "The new handset comes with a faster chip and a better camera."
python - <<'PY'
import json, time
from rec_edge import Predictor
rows = [json.loads(line) for line in open("data/bbc/test.jsonl", encoding="utf-8")]
predictor = Predictor.load("exports/bbc-demo")
start = time.perf_counter()
predicted = [p.label for p in predictor.predict([r["text"] for r in rows])]
seconds = time.perf_counter() - start
accuracy = sum(p == r["label"] for p, r in zip(predicted, rows)) / len(rows)
print(f"test accuracy of the int8 bundle: {accuracy:.4f} on {len(rows)} articles "
      f"({1e3 * seconds / len(rows):.2f} ms per article, batch 32)")
PY

step "4/4 bench: rec-edge int8 vs bare onnxruntime vs PyTorch fp32, interleaved, one process each"
rec-edge bench exports/bbc-demo --engines onnx,ort-raw,torch --text-file data/bbc/test.jsonl \
  --label-field label --batch-sizes 1,32 --warmup 3 --iterations 30 --cold-start-runs 2 \
  --out runs/bbc-demo-bench 2>/dev/null
echo
echo "demo finished: runs/bbc-demo (training run), exports/bbc-demo (bundle), runs/bbc-demo-bench (reports)"
echo "(recommendation on MovieLens-100K joins the demo with its issue)"
