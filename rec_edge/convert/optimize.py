"""Portable graph fusions (attention, layer norm, GELU) with onnxruntime's transformer optimizer.

Only the offline fusion pass is run (opt_level=0): its contrib ops run on every CPU and on CUDA.
onnxruntime's level-99 graphs are written for the machine that made them and are never shipped;
the runtime applies its machine-specific optimizations in memory at load time instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import onnx

log = logging.getLogger("rec_edge")

# model_type in config.json -> onnxruntime optimizer model type
FUSABLE = {
    "bert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
    "electra": "bert",
    "distilbert": "bert",
    "gpt2": "gpt2",
}


def optimize_graph(
    src: Path, dst: Path, model_type: str, num_heads: int, hidden_size: int
) -> dict[str, Any]:
    """Write the fused graph to dst; returns the fused-op counts (empty if the type is not fusable)."""
    from onnxruntime.transformers.optimizer import optimize_model

    kind = FUSABLE.get(model_type)
    if kind is None:
        log.warning(
            "No fusions known for model type %r; the graph is kept as exported.", model_type
        )
        onnx.save(onnx.load(str(src)), str(dst))
        return {}
    model = optimize_model(
        str(src),
        model_type=kind,
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=0,
        use_gpu=False,
    )
    model.save_model_to_file(str(dst))
    return {k: v for k, v in model.get_fused_operator_statistics().items() if v}
