#!/usr/bin/env bash
# Few-shot BANKING77 (10 examples per intent): with and without an instruction template, 3 seeds.
# BANKING77: Casanueva et al. 2020, CC BY 4.0. About 5 minutes a run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${BANKING77:-../shared/data/banking77}
out=benchmarks/results/banking77-fewshot
mkdir -p "$out"
for seed in ${SEEDS:-1 2 3}; do
  rec-edge train "$data/train.csv" --label-field category --test-file "$data/test.csv" --shots 10 \
    --epochs 15 --early-stopping-patience 3 --seed "$seed" --name "b77-10shot-template-s$seed" --force \
    --instruction "Decide which banking intent this message expresses." --json > "$out/template-s$seed.json"
  rec-edge train "$data/train.csv" --label-field category --test-file "$data/test.csv" --shots 10 \
    --epochs 15 --early-stopping-patience 3 --seed "$seed" --name "b77-10shot-raw-s$seed" --force \
    --no-template --json > "$out/raw-s$seed.json"
done
python - "$out" <<'PY'
import json, sys, pathlib, statistics
out = pathlib.Path(sys.argv[1])
for kind in ("template", "raw"):
    acc = [json.loads(p.read_text())["test"]["accuracy"] for p in sorted(out.glob(f"{kind}-s*.json"))]
    print(f"{kind:>8}: test accuracy {statistics.mean(acc):.4f} (seeds: {', '.join(f'{a:.4f}' for a in acc)})")
PY
