#!/usr/bin/env bash
# Rebuild the BANKING77 tables of benchmarks/RESULTS.md from scratch: train (full data, LoRA on
# MiniLM), export every recipe and the gated default, then one interleaved bench run.
# BANKING77: Casanueva et al. 2020, CC BY 4.0 (../shared/data/banking77 or $BANKING77).
# About 40 minutes on 2 cores, most of it training. Existing runs and bundles are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${BANKING77:-../shared/data/banking77}
out=benchmarks/results
mkdir -p "$out"
instruction="Decide which banking intent this message expresses."

if [ ! -f runs/banking77/run.json ]; then
  rec-edge train "$data/train.csv" --label-field category --test-file "$data/test.csv" \
    --name banking77 --epochs 10 --instruction "$instruction" --json > "$out/banking77-train.json"
fi
# The gated default (what users get), then each recipe alone for the table.
[ -d exports/banking77 ] || rec-edge export runs/banking77 --out exports/banking77 --keep-fp32
for recipe in fp32 dynamic dynamic-per-channel static; do
  [ -d "exports/banking77-$recipe" ] || rec-edge export runs/banking77 --out "exports/banking77-$recipe" \
    --quantize "$recipe" --max-accuracy-drop 100
done

# rec-edge int8 vs PyTorch fp32 vs optimum int8 vs bare onnxruntime, test accuracy on all 3,080.
rec-edge bench exports/banking77 --engines onnx,ort-raw,torch,optimum --text-file "$data/test.csv" \
  --label-field category --text-field text --batch-sizes 1,32 --iterations 200 --max-texts 3080 \
  --cold-start-runs 5 --out "$out/banking77-engines"
# The recipes: size, test accuracy, batch-1 and batch-32 latency through the rec-edge runtime.
rec-edge bench exports/banking77-fp32 exports/banking77-dynamic exports/banking77-dynamic-per-channel \
  exports/banking77-static exports/banking77 --engines onnx --text-file "$data/test.csv" \
  --label-field category --batch-sizes 1,32 --iterations 100 --max-texts 3080 --cold-start-runs 0 \
  --baseline onnx --out "$out/banking77-recipes"
echo "tables: $out/banking77-engines/bench.md, $out/banking77-recipes/bench.md"
