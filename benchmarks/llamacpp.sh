#!/usr/bin/env bash
# llama.cpp, the peer of benchmarks/decoder.py: llama-cpp-python built from its source into
# .venv-llama (never into .venv: a benchmark peer, not a dependency), and Q4_0 / Q8_0 GGUFs of
# the same weights the bundles hold. The bundles' fp32 weights are the shipped Q4_1 GGUF
# de-quantized (transformers does it at export), so re-quantizing that GGUF (allow_requantize)
# gives what quantizing an f32 GGUF of the bundles' weights would; llama.cpp's HF converter is
# not needed (for a Llama vocabulary it wants sentencepiece, which rec-edge does not install).
#   bash benchmarks/llamacpp.sh [WORK]      (~8 min on 2 cores, nearly all of it compiling)
set -euo pipefail
version=0.3.36
work=${1:-runs/decoder-bench}
venv=.venv-llama
# ggml's AMX kernels (compiled in wherever the build CPU has AMX, native or not) fault on their
# first tile load in this version (ldtilecfg, a general protection fault in libggml-cpu; Intel
# Xeon, 2026-12-07, with the process granted AMX): the build names the CPU's other kernels
# instead (AVX2, and AVX-512 with VNNI and BF16 where the CPU has them), without AMX
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
isa="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
case "$flags" in *avx512f*) isa="$isa -DGGML_AVX512=ON" ;; esac
case "$flags" in *avx512_vnni*) isa="$isa -DGGML_AVX512_VNNI=ON" ;; esac
case "$flags" in *avx512_bf16*) isa="$isa -DGGML_AVX512_BF16=ON" ;; esac
case "$flags" in *avx512vbmi*) isa="$isa -DGGML_AVX512_VBMI=ON" ;; esac
case "$flags" in *avx_vnni*) isa="$isa -DGGML_AVX_VNNI=ON" ;; esac
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  python3 -m venv "$venv"
  CMAKE_ARGS="$isa -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 "$venv/bin/pip" install --disable-pip-version-check -q \
    --no-cache-dir "llama-cpp-python==$version"
fi
mkdir -p "$work"
source=$(.venv/bin/python -c "from rec_edge.models import resolve_model; print(resolve_model('smollm2'))")
cp "$source" "$work/smollm2-q4_1.gguf"
"$venv/bin/python" - "$work" <<'PY'
import ctypes
import sys

import llama_cpp

work = sys.argv[1]
for name, ftype in (("q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0), ("q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    params.allow_requantize = True
    out = f"{work}/smollm2-{name}.gguf"
    source = f"{work}/smollm2-q4_1.gguf".encode()
    code = llama_cpp.llama_model_quantize(source, out.encode(), ctypes.byref(params))
    print(out, "ok" if code == 0 else f"failed ({code})")
PY
