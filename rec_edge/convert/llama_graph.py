"""TORCH: a Llama-architecture causal LM written straight into an ONNX decoder graph of fused
onnxruntime operators (``GroupQueryAttention`` with its rotary embedding, ``SkipSimplified-
LayerNormalization``, one MatMul for q, k and v and one for gate and up), where optimum's export
spends about 3,000 nodes a token on shape arithmetic, unfused attention and a cache that grows
by copying (benchmarks/RESULTS.md, "Decoder bundles").

The graph keeps the contract of optimum's: inputs ``input_ids``, ``attention_mask`` (its row
sums are all the graph reads: the cache holds a row's real tokens only, so right padding never
enters it) and ``past_key_values.N.key/value`` ([batch, kv heads, past, head size]); outputs
``logits`` and ``present.N.key/value``. The runtime needs no change, and ``_parity`` checks
the graph against PyTorch at export. Models this builder does not describe (biases, scaled
rotary embeddings, other architectures) return None: optimum exports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MS = "com.microsoft"
OPSET = 17


def supports(model: Any) -> str | None:
    """None when ``model`` is a Llama this builder writes exactly; else why not."""
    config = model.config
    if type(model).__name__ != "LlamaForCausalLM":
        return f"architecture {type(model).__name__}"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "biases in attention or MLP"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act}"
    heads = config.num_attention_heads
    if (getattr(config, "head_dim", None) or config.hidden_size // heads) % 16:
        return "a head size that is not a multiple of 16 (GroupQueryAttention's)"
    rotary: Any = getattr(model.model, "rotary_emb", None)
    rope = getattr(rotary, "rope_type", None)
    # these rope types set fixed inverse frequencies (the caches below); others change them with
    # the sequence's length or scale the attention
    if rope not in ("default", "linear", "llama3") or float(rotary.attention_scaling) != 1.0:
        return f"a rotary embedding of type {rope}"
    return None


def build_llama_graph(model: Any) -> Any:
    """The fp32 decoder graph of a Llama ``model`` (see ``supports``), weights inside."""
    from onnx import TensorProto, helper

    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    b = _Builder()
    b.input("input_ids", TensorProto.INT64, ["batch", "sequence"])
    b.input("attention_mask", TensorProto.INT64, ["batch", "total"])
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    hidden = b.node("Gather", [b.const("embed", state["model.embed_tokens.weight"]), "input_ids"])
    seqlens, total, query_lens = _lengths(b)
    cos, sin = _rotary_caches(model, head_dim, b)
    eps = float(config.rms_norm_eps)
    residual: str | None = None
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        normed, residual = _norm(b, hidden, residual, state[p + "input_layernorm.weight"], eps)
        qkv = b.matmul(normed, _side_by_side(state, p + "self_attn.", "qkv"), f"layer{i}/qkv_proj")
        attention = _attention(b, i, qkv, (seqlens, total, cos, sin, query_lens), config)
        out = b.matmul(attention, state[p + "self_attn.o_proj.weight"].T, f"layer{i}/o_proj")
        normed, residual = _norm(
            b, out, residual, state[p + "post_attention_layernorm.weight"], eps
        )
        hidden = _mlp(b, i, normed, state, config.intermediate_size)
    final, _ = _norm(b, hidden, residual, state["model.norm.weight"], eps)
    vocab = int(state["model.embed_tokens.weight"].shape[0])
    if getattr(config, "tie_word_embeddings", False) or "lm_head.weight" not in state:
        # read through a Transpose, as optimum's graph does: one copy on disk, and the int4 /
        # int8 forms give the output layer a quantized copy of its own (quantize_weights)
        head = b.node("Transpose", ["embed"], perm=[1, 0], label="lm_head/Transpose")
        b.node("MatMul", [final, head], names=["logits"], label="lm_head")
    else:
        b.matmul(final, state["lm_head.weight"].T, "lm_head", output="logits")
    b.output("logits", ["batch", "sequence", vocab])
    b.outputs.insert(0, b.outputs.pop())  # logits first, then the cache (as optimum's graph)
    graph = helper.make_graph(b.nodes, "rec-edge-llama", b.inputs, b.outputs, b.initializers)
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
        producer_name="rec-edge",
    )


def _attention(b: _Builder, i: int, qkv: str, lengths: tuple[str, ...], config: Any) -> str:
    """Layer ``i``'s GroupQueryAttention over the packed ``qkv``, rotary inside; its cache in
    (``past_key_values.i.*``) and out (``present.i.*``). ``lengths``: seqlens, total, cos, sin,
    query lengths. Returns the attention's output."""
    from onnx import TensorProto

    seqlens, total, cos, sin, query_lens = lengths
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    for kind in ("key", "value"):
        b.input(
            f"past_key_values.{i}.{kind}",
            TensorProto.FLOAT,
            _cache_dims(kv_heads, head_dim, "past"),
        )
    presents = [f"present.{i}.key", f"present.{i}.value"]
    attention = b.node(
        "GroupQueryAttention",
        [
            qkv,
            "",
            "",
            f"past_key_values.{i}.key",
            f"past_key_values.{i}.value",
            seqlens,
            total,
            cos,
            sin,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            query_lens,
        ],  # fmt: skip
        outputs=3,
        names=[f"attention{i}", *presents],
        domain=MS,
        num_heads=heads,
        kv_num_heads=kv_heads,
        do_rotary=1,
        rotary_interleaved=0,
    )
    for name in presents:
        b.output(name, _cache_dims(kv_heads, head_dim, "total"))
    return attention[0]


def _mlp(b: _Builder, i: int, x: str, state: dict[str, np.ndarray], intermediate: int) -> str:
    """Layer ``i``'s gated MLP: gate and up in one MatMul, SiLU as QuickGelu(alpha=1), down."""
    p = f"model.layers.{i}.mlp."
    gate_up = b.matmul(x, _side_by_side(state, p, "gate_up"), f"layer{i}/gate_up")
    sizes = b.const(f"split{i}", np.array([intermediate] * 2, np.int64))
    gate, up = b.node("Split", [gate_up, sizes], outputs=2, axis=-1)
    activated = b.node("Mul", [b.node("QuickGelu", [gate], domain=MS, alpha=1.0), up])
    return b.matmul(activated, state[p + "down_proj.weight"].T, f"layer{i}/down_proj")


def _norm(
    b: _Builder, x: str, residual: str | None, weight: np.ndarray, eps: float
) -> tuple[str, str]:
    """RMSNorm of ``x`` + ``residual`` (the first: of ``x`` alone): (normed, the new residual)."""
    gamma = b.const(f"norm{len(b.initializers)}", weight)
    if residual is None:
        return b.node("SimplifiedLayerNormalization", [x, gamma], epsilon=eps, axis=-1), x
    normed, _, _, total = b.node(
        "SkipSimplifiedLayerNormalization", [x, residual, gamma], outputs=4, domain=MS, epsilon=eps
    )
    return normed, total


def _lengths(b: _Builder) -> tuple[str, str, str]:
    """From the mask's row sums: seqlens_k (tokens in the cache after this step, minus one),
    total_sequence_length (an upper bound: the mask's width) and query_seqlens (this step's
    real tokens per row: the mask's last ``sequence`` columns)."""
    from onnx import TensorProto

    one = b.const("one", np.array([1], np.int64))
    axis = b.const("axis1", np.array([1], np.int64))
    tokens = b.node("ReduceSum", ["attention_mask", axis], keepdims=0)
    seqlens = b.node("Cast", [b.node("Sub", [tokens, one])], to=TensorProto.INT32)
    width = b.node(
        "Gather", [b.node("Shape", ["attention_mask"]), b.const("i1", np.array(1, np.int64))]
    )
    total = b.node("Cast", [width], to=TensorProto.INT32)
    new = b.node("Gather", [b.node("Shape", ["input_ids"]), b.const("i1b", np.array(1, np.int64))])
    start = b.node(
        "Unsqueeze", [b.node("Sub", [width, new]), b.const("axis0", np.array([0], np.int64))]
    )
    end = b.const("end", np.array([2**62], np.int64))
    recent = b.node("Slice", ["attention_mask", start, end, axis])
    query = b.node("Cast", [b.node("ReduceSum", [recent, axis], keepdims=0)], to=TensorProto.INT32)
    return seqlens, total, query


def _rotary_caches(model: Any, head_dim: int, b: _Builder) -> tuple[str, str]:
    """cos and sin of every position up to the model's context, [positions, head_dim / 2], from
    the model's own inverse frequencies (its rope type already applied)."""
    inv_freq = model.model.rotary_emb.inv_freq.detach().double().numpy()
    positions = np.arange(int(model.config.max_position_embeddings), dtype=np.float64)
    angles = np.outer(positions, inv_freq)
    assert angles.shape[1] == head_dim // 2
    return b.const("cos_cache", np.cos(angles).astype(np.float32)), b.const(
        "sin_cache", np.sin(angles).astype(np.float32)
    )


def _side_by_side(state: dict[str, np.ndarray], prefix: str, parts: str) -> np.ndarray:
    """The projections of one block in one matrix, [in, sum of outs]: ``qkv`` or ``gate_up``."""
    names = ["q", "k", "v"] if parts == "qkv" else ["gate", "up"]
    return np.concatenate([state[f"{prefix}{n}_proj.weight"].T for n in names], axis=1)


def _cache_dims(kv_heads: int, head_dim: int, length: str) -> list[Any]:
    return ["batch", kv_heads, length, head_dim]


class _Builder:
    """Nodes, initializers, inputs and outputs of one graph, named as they are made."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []

    def input(self, name: str, dtype: int, dims: list[Any]) -> None:
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, dtype, dims))

    def output(self, name: str, dims: list[Any]) -> None:
        from onnx import TensorProto, helper

        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        contiguous = value if value.flags.c_contiguous else value.copy(order="C")  # keeps 0-d
        self.initializers.append(numpy_helper.from_array(contiguous, name))
        return name

    def matmul(self, x: str, weight: np.ndarray, label: str, output: str | None = None) -> str:
        """``x`` @ ``weight`` ([in, out], a constant named after the node: the quantizer's)."""
        names = [output] if output else [f"{label}/output"]
        return self.node(
            "MatMul", [x, self.const(f"{label}.weight", weight)], names=names, label=label
        )

    def node(
        self,
        op: str,
        inputs: list[str],
        outputs: int = 1,
        names: list[str] | None = None,
        label: str | None = None,
        domain: str = "",
        **attributes: Any,
    ) -> Any:
        from onnx import helper

        index = len(self.nodes)
        produced = names or [f"{op}_{index}_{k}" for k in range(outputs)]
        self.nodes.append(
            helper.make_node(
                op,
                inputs,
                produced,
                name=label or f"{op}_{index}",
                domain=domain or None,
                **attributes,
            )
        )
        return produced[0] if outputs == 1 else produced
