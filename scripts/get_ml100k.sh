#!/usr/bin/env bash
# Fetch MovieLens-100K (RecBole atomic files) from the wheel of recbole==1.2.1 into $1.
# Its licence forbids redistribution: the files stay in the ignored data/ folder, never in git.
set -euo pipefail
out=${1:-data/ml-100k}
cache=$(dirname "$out")/.cache
mkdir -p "$cache" "$out"
wheel=$(ls "$cache"/recbole-1.2.1-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip download --disable-pip-version-check --no-deps -q -d "$cache" recbole==1.2.1
  wheel=$(ls "$cache"/recbole-1.2.1-*.whl | head -1)
fi
python3 - "$wheel" "$out" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in ("ml-100k.inter", "ml-100k.item"):
        with open(f"{sys.argv[2]}/{name}", "wb") as f:
            f.write(wheel.read(f"recbole/dataset_example/ml-100k/{name}"))
PY
echo "MovieLens-100K: $(($(wc -l < "$out/ml-100k.inter") - 1)) ratings, $(($(wc -l < "$out/ml-100k.item") - 1)) items -> $out"
