#!/usr/bin/env bash
# MovieLens-100K (make bench-ml100k): 64 and 256 training examples, SEEDS seeds each (default 3),
# with the titles and with --item-template (title, year, genres); new items (cold start), the
# same two ways; then all training examples
# (FULL=1: one epoch is ~2 h on 2 cores). Each run trains (text towers, collaborative tables,
# stack), exports and is evaluated with its parts and the baselines in the same run; then
# `rec-edge bench` on the ranking requests. The requests file stays under runs/ (licence).
# Called by `make bench-ml100k` after `make data`.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
seeds=${SEEDS:-3}
items='{title} ({year}), {genres}'
for shots in 64 256; do
  python benchmarks/ml100k.py --shots "$shots" --seeds "$seeds" --out "benchmarks/results/ml100k-$shots"
  python benchmarks/ml100k.py --shots "$shots" --seeds "$seeds" --item-template "$items" --max-length 256 \
    --name "ml100k-$shots-items" --latency-users 0 --out "benchmarks/results/ml100k-$shots-items"
done
# new items (cold start): 20% of the titles held out entirely; with the titles and with the template
python benchmarks/ml100k_cold.py --seeds "$seeds" --out benchmarks/results/ml100k-cold
python benchmarks/ml100k_cold.py --seeds "$seeds" --item-template "$items" --name ml100k-cold-items \
  --out benchmarks/results/ml100k-cold-items
# how far the count parts go at full data, and variants of them (no model is trained: seconds)
python benchmarks/ml100k_counts.py --out benchmarks/results/ml100k-counts
if [ "${FULL:-0}" = 1 ]; then
  python benchmarks/ml100k.py --seeds "$seeds" --out benchmarks/results/ml100k-full \
    --requests runs/ml100k-requests.jsonl
  # the collaborative tables' settings: a grid on validation rows the stage did not choose epochs on
  python benchmarks/ml100k_collab.py --run runs/ml100k-full-seed42 --out benchmarks/results/ml100k-collab
  rec-edge bench exports/ml100k-full-seed42 --engines onnx,ort-raw,torch,optimum \
    --text-file runs/ml100k-requests.jsonl --label-field target --batch-sizes 1 \
    --warmup 5 --iterations 100 --out benchmarks/results/ml100k-bench
fi
