#!/usr/bin/env bash
# onnxruntime-genai, a peer of benchmarks/decoder.py: its own environment (.venv-genai, never
# .venv: its model builder needs transformers 5, rec-edge pins < 4.58), then its builder's int4
# model of the same fp32 weights the bundles hold (WORK/hf, written by benchmarks/decoder.py),
# blocks of 32 and accuracy level 4 as the rec-edge int4 bundle.
#   bash benchmarks/genai.sh [WORK]      (~3 min on 2 cores)
set -euo pipefail
work=${1:-runs/decoder-bench}
venv=.venv-genai
if ! "$venv/bin/python" -c "import onnxruntime_genai, transformers, onnx_ir" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check -q torch==2.13.0 "transformers>=5,<6" \
    onnxruntime-genai==0.18.0 onnx onnx-ir onnxruntime safetensors
fi
[ -f "$work/hf/config.json" ] || { echo "run benchmarks/decoder.py first (it writes $work/hf)"; exit 1; }
rm -rf "$work/genai-int4"
"$venv/bin/python" -m onnxruntime_genai.models.builder -i "$work/hf" -o "$work/genai-int4" \
  -p int4 -e cpu -c "$work/genai-cache" \
  --extra_options int4_block_size=32 int4_accuracy_level=4
echo "$work/genai-int4"
