#!/usr/bin/env bash
# Batch invariance of every int8 form, and the gate's determinism, on one run:
#   benchmarks/batch_invariance.sh RUN_DIR TEST_FILE LABEL_FIELD OUT_NAME
# Exports the run once per recipe (reusing existing bundles), exports the default (auto) twice and
# checks that both are the same file, then measures every bundle side by side
# (benchmarks/batch_invariance.py). ~10 min for BBC News, ~20 for BANKING77 on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1 test=$2 label=$3 name=$4
out=benchmarks/results/$name
mkdir -p "$out"
bundles=()
recipes=${RECIPES:-fp32 dynamic dynamic-per-channel dynamic-per-channel-rr static calibrated calibrated-per-channel calibrated-per-channel-rr}
for recipe in $recipes; do
  dir=exports/$name-$recipe
  [ -d "$dir" ] || rec-edge export "$run" --out "$dir" --quantize "$recipe" --max-accuracy-drop 100 \
    --allow-batch-variance >"$out/export-$recipe.log" 2>&1
  bundles+=("$dir")
done
# the default, twice: the same run, data and flags must give the same bundle
for i in 1 2; do
  rec-edge export "$run" --out "exports/$name-auto$i" --force --json 2>/dev/null >"$out/export-auto$i.json"
done
python - "$name" "$out" <<'PY'
import json, sys
from rec_edge.bundle import load_bundle
name, out = sys.argv[1], sys.argv[2]
a, b = (load_bundle(f"exports/{name}-auto{i}").manifest for i in (1, 2))
same = {"recipe": [a.recipe["name"], b.recipe["name"]],
        "model_sha256_equal": a.files["model.onnx"] == b.files["model.onnx"],
        "gate_metrics_equal": [r[r["metric"]] for r in a.metrics["gate"]] == [r[r["metric"]] for r in b.metrics["gate"]],
        "timings_ms": [[r["ms_per_item"] for r in m.metrics["gate"]] for m in (a, b)],
        "timing_spread": [[r["timing_spread"] for r in m.metrics["gate"]] for m in (a, b)],
        "choice_rule": a.recipe["choice_rule"]}
json.dump(same, open(f"{out}/determinism.json", "w"), indent=1)
print(json.dumps(same, indent=1))
PY
[ -n "${SKIP_MEASURE:-}" ] || python benchmarks/batch_invariance.py "${bundles[@]}" "exports/$name-auto1" --text-file "$test" \
  --label-field "$label" --out "$out"
