r"""The description head as ONNX nodes (build side, onnx only): appended to optimum's
feature-extraction graph, so that the bundle's graph gives label scores like any other and the
runtime needs nothing new.

    last_hidden_state [batch, seq, hidden], attention_mask [batch, seq]
      -> masked mean over seq -> unit length -> scale * (. @ rows^T) + bias -> logits [batch, labels]
                                          \-> embedding [batch, hidden] (the second output)

The nodes are named ``HEAD_PREFIX...``; quantization leaves them in float (``head_nodes``), so
that int8 changes the encoder only and a label's row stays exactly what training left.

The head computes in float64 and rounds to float32 at the end. onnxruntime's float32 ReduceSum
and MatMul sum in an order that depends on the padded length and the batch size, so a text's
scores moved by up to 2e-6 with its batch-mates; summed in float64, the float32 answer is the
same however the texts were batched (a server's micro-batches answer as the text alone does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.errors import ExportError
from rec_edge.modeling.heads import MEAN_EPS, NORM_EPS, LabelHead
from rec_edge.runtime.predictor import EMBEDDING_OUTPUT

HEAD_PREFIX = "rec_edge_head/"
HIDDEN = "last_hidden_state"
OUTPUT = "logits"
EMBEDDING = EMBEDDING_OUTPUT  # the unit-length pooled vector the head reads: a second output


def append_head(path: Path, head: LabelHead) -> None:
    """Rewrite the graph at ``path`` (optimum's feature extraction) to end in the head."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    outputs = [o.name for o in graph.output]
    if HIDDEN not in outputs or "attention_mask" not in [i.name for i in graph.input]:
        raise ExportError(
            f"{path}: the description head needs a graph with input attention_mask and output "
            f"{HIDDEN} (optimum's feature-extraction export); it has outputs {outputs}."
        )
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise ExportError(f"{path}: opset {opset}; the description head needs 13 or newer.")

    def name(step: str) -> str:
        return f"{HEAD_PREFIX}{step}"

    weights = (head.scale * head.rows.T).astype(np.float32)  # [hidden, labels]
    constants: dict[str, np.ndarray] = {
        "rows": weights,
        "bias": head.bias.astype(np.float32),
        "axis_seq": np.array([1], np.int64),
        "axis_last": np.array([-1], np.int64),
        "mean_eps": np.array(MEAN_EPS, np.float32),
        "norm_eps": np.array(NORM_EPS, np.float32),
    }
    graph.initializer.extend(numpy_helper.from_array(v, name(k)) for k, v in constants.items())
    outer = {"attention_mask", HIDDEN, OUTPUT, EMBEDDING}  # the graph's own names
    graph.node.extend(
        helper.make_node(
            kind,
            [i if i in outer else name(i) for i in inputs],
            [output if output in outer else name(output)],
            name=name(step),
            **attributes,
        )
        for kind, inputs, output, step, attributes in _head_steps()
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(
                OUTPUT, TensorProto.FLOAT, ["batch_size", len(head.labels)]
            ),
            helper.make_tensor_value_info(
                EMBEDDING, TensorProto.FLOAT, ["batch_size", int(head.rows.shape[1])]
            ),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _head_steps() -> list[tuple[str, list[str], str, str, dict[str, Any]]]:
    """The head as (op, inputs, output, node, attributes), in float64: the mean of the hidden
    states over the mask, made unit length (the ``embedding``), times the rows plus the bias
    (the ``logits``); both outputs cast back to float32."""
    from onnx import TensorProto

    double, single = {"to": TensorProto.DOUBLE}, {"to": TensorProto.FLOAT}
    constants = ("rows", "bias", "mean_eps", "norm_eps")
    return [
        ("Cast", ["attention_mask"], "mask", "cast", double),
        ("Cast", [HIDDEN], "hidden64", "hidden64", double),
        *(("Cast", [k], k + "64", k + "64", double) for k in constants),
        ("Unsqueeze", ["mask", "axis_last"], "mask3", "unsqueeze", {}),
        ("Mul", ["hidden64", "mask3"], "masked", "masked", {}),
        ("ReduceSum", ["masked", "axis_seq"], "sum", "sum", {"keepdims": 0}),
        ("ReduceSum", ["mask3", "axis_seq"], "count", "count", {"keepdims": 0}),
        ("Max", ["count", "mean_eps64"], "count_eps", "count_eps", {}),
        ("Div", ["sum", "count_eps"], "mean", "mean", {}),
        ("Mul", ["mean", "mean"], "square", "square", {}),
        ("ReduceSum", ["square", "axis_last"], "sq_sum", "sq_sum", {"keepdims": 1}),
        ("Sqrt", ["sq_sum"], "norm", "norm", {}),
        ("Max", ["norm", "norm_eps64"], "norm_eps_max", "norm_eps", {}),
        ("Div", ["mean", "norm_eps_max"], "unit", "unit", {}),
        ("MatMul", ["unit", "rows64"], "scores", "matmul", {}),
        ("Add", ["scores", "bias64"], "logits64", "bias_add", {}),
        ("Cast", ["logits64"], OUTPUT, "logits", single),
        ("Cast", ["unit"], EMBEDDING, "embedding", single),
    ]


def head_nodes(path: Path) -> list[str]:
    """The head's node names in the graph at ``path`` (none for other graphs)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.name.startswith(HEAD_PREFIX)]
