"""Bulk encoding (BUILD side: needs the exporter): a run's model as an int8 onnxruntime session,
for the many texts that training's later stages encode (the collaborative stage's rows).

PyTorch fp32 encoded about 60 MovieLens prompts a second on 2 cores. The same graph the bundle
ships (optimum export, portable fusions, s8 weights), quantized dynamically and run by
onnxruntime over length-sorted batches, does the same work several times faster
(benchmarks/RESULTS.md, "Training speed"). Dynamic int8 makes a row's scores depend slightly on
its batch-mates; the tables fitted on them are measured against the fp32 ones there. The 7-bit
weights (``-rr``) keep u8 x s8 products from overflowing on CPUs without VNNI.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rec_edge.convert.onnx_export import export_onnx
from rec_edge.convert.optimize import optimize_graph
from rec_edge.convert.quantize import get_recipe, quantize
from rec_edge.runtime.session import SessionConfig, create_session
from rec_edge.runtime.tokenize import BundleTokenizer, pad_batch

BULK_RECIPE = "dynamic-per-channel-rr"


def int8_session_logits(
    model_dir: Path,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 32,
    threads: int | None = None,
) -> np.ndarray:
    """The sequence classifier's output rows for ``texts`` (in order; each distinct text once),
    float32 [len(texts), outputs], by a dynamic int8 session of ``model_dir`` built in a
    temporary folder and thrown away after."""
    from transformers import AutoConfig

    unique = list(dict.fromkeys(texts))
    config = AutoConfig.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory(prefix="rec-edge-bulk-") as tmp:
        work = Path(tmp)
        unfused = export_onnx(model_dir, work / "onnx", "text-classification")
        fused = work / "fused.onnx"
        optimize_graph(
            unfused,
            fused,
            config.model_type,
            getattr(config, "num_attention_heads", 0),
            getattr(config, "hidden_size", 0),
        )
        graph = work / "int8.onnx"
        quantize(fused, graph, get_recipe(BULK_RECIPE))
        session = create_session(graph, SessionConfig(threads=threads))
        rows = _run_sorted(session, model_dir / "tokenizer.json", unique, max_length, batch_size)
    where = {t: i for i, t in enumerate(unique)}
    return rows[[where[t] for t in texts]]


def _run_sorted(
    session: object,
    tokenizer_file: Path,
    texts: list[str],
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """Batches of similar length (each pads only to its own longest text), rows back in order."""
    tokenizer = BundleTokenizer(tokenizer_file, max_length)
    names = [i.name for i in session.get_inputs()]  # type: ignore[attr-defined]
    encodings = tokenizer.encode(texts)
    order = np.argsort([len(e.ids) for e in encodings], kind="stable")
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = pad_batch([encodings[i] for i in index], tokenizer.pad_id)
        scores = session.run(None, {n: batch[n] for n in names})[0]  # type: ignore[attr-defined]
        if out is None:
            out = np.empty((len(texts), scores.shape[-1]), dtype=np.float32)
        out[index] = scores
    return out if out is not None else np.zeros((0, 0), np.float32)
