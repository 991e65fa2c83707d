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
    node = helper.make_node
    graph.node.extend(
        [
            node(
                "Cast", ["attention_mask"], [name("mask")], to=TensorProto.DOUBLE, name=name("cast")
            ),
            node(
                "Cast", [HIDDEN], [name("hidden64")], to=TensorProto.DOUBLE, name=name("hidden64")
            ),
            *(
                node(
                    "Cast", [name(k)], [name(k + "64")], to=TensorProto.DOUBLE, name=name(k + "64")
                )
                for k in ("rows", "bias", "mean_eps", "norm_eps")
            ),
            node(
                "Unsqueeze",
                [name("mask"), name("axis_last")],
                [name("mask3")],
                name=name("unsqueeze"),
            ),
            node("Mul", [name("hidden64"), name("mask3")], [name("masked")], name=name("masked")),
            node(
                "ReduceSum",
                [name("masked"), name("axis_seq")],
                [name("sum")],
                keepdims=0,
                name=name("sum"),
            ),
            node(
                "ReduceSum",
                [name("mask3"), name("axis_seq")],
                [name("count")],
                keepdims=0,
                name=name("count"),
            ),
            node(
                "Max",
                [name("count"), name("mean_eps64")],
                [name("count_eps")],
                name=name("count_eps"),
            ),
            node("Div", [name("sum"), name("count_eps")], [name("mean")], name=name("mean")),
            node("Mul", [name("mean"), name("mean")], [name("square")], name=name("square")),
            node(
                "ReduceSum",
                [name("square"), name("axis_last")],
                [name("sq_sum")],
                keepdims=1,
                name=name("sq_sum"),
            ),
            node("Sqrt", [name("sq_sum")], [name("norm")], name=name("norm")),
            node(
                "Max",
                [name("norm"), name("norm_eps64")],
                [name("norm_eps_max")],
                name=name("norm_eps"),
            ),
            node("Div", [name("mean"), name("norm_eps_max")], [name("unit")], name=name("unit")),
            node("MatMul", [name("unit"), name("rows64")], [name("scores")], name=name("matmul")),
            node(
                "Add", [name("scores"), name("bias64")], [name("logits64")], name=name("bias_add")
            ),
            node("Cast", [name("logits64")], [OUTPUT], to=TensorProto.FLOAT, name=name("logits")),
            node("Cast", [name("unit")], [EMBEDDING], to=TensorProto.FLOAT, name=name("embedding")),
        ]
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


def head_nodes(path: Path) -> list[str]:
    """The head's node names in the graph at ``path`` (none for other graphs)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.name.startswith(HEAD_PREFIX)]
