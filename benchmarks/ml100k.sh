#!/usr/bin/env bash
# MovieLens-100K: the training regimes (64, 256, all examples, all for a second epoch), each trained (text towers, then the
# collaborative tables), exported and evaluated in one run
# (baselines in the same run), then `rec-edge bench` on the full-data bundle's ranking requests.
# Called by `make bench-ml100k` after `make data`. The requests file stays under runs/ (licence).
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
for shots in 64 256; do
  python benchmarks/ml100k.py --shots "$shots" --out "benchmarks/results/ml100k-$shots"
done
python benchmarks/ml100k.py --out benchmarks/results/ml100k-full
# a second epoch on top of the first: new LoRA matrices on the merged model, half the peak rate
python benchmarks/ml100k.py --model runs/ml100k-full/model --name ml100k-full2 --learning-rate 5e-4 \
  --seed 1 --out benchmarks/results/ml100k-full2 --requests runs/ml100k-requests.jsonl
# the collaborative tables' settings: a grid on validation rows the stage did not choose epochs on
python benchmarks/ml100k_collab.py --run runs/ml100k-full2 --out benchmarks/results/ml100k-collab
rec-edge bench exports/ml100k-full2 --engines onnx,ort-raw,torch,optimum \
  --text-file runs/ml100k-requests.jsonl --label-field target --batch-sizes 1 \
  --warmup 5 --iterations 100 --out benchmarks/results/ml100k-bench
