"""The machine's limit, measured the same day through onnxruntime: large fp32 and int8 matmuls."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from rec_edge.versions import machine


def _matmul_model(size: int, int8: bool) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        weight = numpy_helper.from_array(rng.integers(-64, 64, (size, size), dtype=np.int8), "B")
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    else:
        weight = numpy_helper.from_array(rng.standard_normal((size, size), dtype=np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type = y_type = TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("A", a_type, [size, size])],
        [helper.make_tensor_value_info("Y", y_type, [size, size])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def matmul_peak(threads: int, int8: bool, size: int = 1024, repeats: int = 10) -> float:
    """Best multiply-accumulates per second of a size^3 matmul in onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        _matmul_model(size, int8), options, providers=["CPUExecutionProvider"]
    )
    a = (
        np.random.default_rng(1).integers(0, 128, (size, size)).astype(np.uint8)
        if int8
        else np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    )
    session.run(None, {"A": a})
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"A": a})
        best = min(best, time.perf_counter() - start)
    return size**3 / best


def theoretical_peak(threads: int) -> dict[str, Any]:
    """From the CPU flags and clock; assumes two 512-bit (or 256-bit) FMA ports per core."""
    info = machine()
    flags = set(info["flags"]) if isinstance(info["flags"], list) else set()
    mhz = 0.0
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            mhz = next(float(line.split(":")[1]) for line in f if line.startswith("cpu MHz"))
    except (OSError, StopIteration, ValueError):
        pass
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fp32_per_cycle = 2 * lanes  # two FMA ports
    int8_per_cycle = 2 * lanes * 4 if ("avx512_vnni" in flags or "avx_vnni" in flags) else lanes * 4
    hz = mhz * 1e6
    return {
        "clock_mhz": mhz,
        "fp32_mac_per_cycle_core": fp32_per_cycle,
        "int8_mac_per_cycle_core": int8_per_cycle,
        "fp32_macs": fp32_per_cycle * hz * threads,
        "int8_macs": int8_per_cycle * hz * threads,
        "note": "two FMA ports per core assumed; turbo and AVX-512 clock offsets ignored",
    }


def macs_per_item(dims: dict[str, Any], tokens: float) -> float | None:
    """Encoder multiply-accumulates for one input of ``tokens`` tokens (projections, FFN, attention)."""
    try:
        h, layers, inter = dims["hidden_size"], dims["num_hidden_layers"], dims["intermediate_size"]
    except (KeyError, TypeError):
        return None
    if not (h and layers and inter):
        return None
    per_token = layers * (4 * h * h + 2 * h * inter)
    attention = layers * 2 * tokens * tokens * h  # QK^T and AV
    return float(tokens * per_token + attention)
