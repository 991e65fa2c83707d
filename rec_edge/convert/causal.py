"""TORCH: a causal language model to an ONNX decoder with its KV cache, and its weights to
MatMulNBits int4 / int8.

The model comes from a GGUF file (transformers de-quantizes it into fp32 weights), a Hugging Face
folder or a hub id. optimum exports it with ``text-generation-with-past`` (inputs ``input_ids``,
``attention_mask``, ``position_ids`` and ``past_key_values.N.key/value``; outputs ``logits`` and
``present.N.key/value``); onnxruntime's MatMulNBits quantizer then stores each MatMul's weight in
blocks of 4 or 8 bits with a scale each (weight-only: activations stay float).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rec_edge.convert.onnx_export import export_onnx
from rec_edge.errors import ExportError
from rec_edge.runtime.generator import KEEP_INPUT

log = logging.getLogger("rec_edge")

SENTINEL = "\x00rec-edge-user\x00"  # never in a chat template; marks where the user's words go
ANSWER_SENTINEL = "\x00rec-edge-answer\x00"


@dataclass(frozen=True)
class ChatFormat:
    """The model's chat template around one user turn, rendered once at export, so that the
    runtime needs no template engine: prompt = prefix + user words + suffix; an answer ends
    with ``end_of_turn``."""

    prefix: str
    suffix: str
    end_of_turn: str


def load_causal_lm(model: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a resolved ``--model`` (see models.resolve_model), fp32, eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, options = model, {}
    if model.endswith(".gguf"):  # transformers reads the file beside its folder
        path = Path(model)
        source, options = str(path.parent), {"gguf_file": path.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        loaded = AutoModelForCausalLM.from_pretrained(source, torch_dtype="float32", **options)
    except (OSError, ValueError) as error:
        raise ExportError(
            f"{model} could not be loaded as a causal language model: {error}"
        ) from None
    return loaded.eval(), tokenizer


def chat_format(tokenizer: Any) -> ChatFormat:
    """The prompt's frame from the tokenizer's chat template (a base model without one: the
    words alone, then a new line)."""
    if not getattr(tokenizer, "chat_template", None):
        return ChatFormat("", "\n", "")
    user = [{"role": "user", "content": SENTINEL}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    prefix, _, suffix = prompt.partition(SENTINEL)
    turn = user + [{"role": "assistant", "content": ANSWER_SENTINEL}]
    whole = tokenizer.apply_chat_template(turn, tokenize=False)
    end_of_turn = whole.partition(ANSWER_SENTINEL)[2].rstrip("\n")
    if not suffix and not prefix:
        raise ExportError("the tokenizer's chat template dropped the user's words")
    return ChatFormat(prefix, suffix, end_of_turn)


def stop_token_ids(model: Any, tokenizer: Any, fmt: ChatFormat) -> list[int]:
    """The tokens that end an answer: the model's end-of-sequence ids and the end of the turn
    when it is one token (a GGUF may name the turn's opening token as its EOS: both are kept)."""
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        eos = getattr(source, "eos_token_id", None)
        ids.update([eos] if isinstance(eos, int) else eos or [])
    if fmt.end_of_turn:
        encoded = tokenizer.encode(fmt.end_of_turn, add_special_tokens=False)
        if len(encoded) == 1:
            ids.add(encoded[0])
    return sorted(ids)


def export_decoder_onnx(model_dir: Path, out_dir: Path) -> Path:
    """optimum's export of a saved causal LM with its KV cache (``text-generation-with-past``);
    parity is measured by the caller on real prompts."""
    return export_onnx(model_dir, out_dir, task="text-generation-with-past", validate=False)


def quantize_weights(
    src: Path,
    dst: Path,
    bits: int,
    block_size: int = 32,
    accuracy_level: int = 4,
    symmetric: bool = False,
) -> Path:
    """MatMulNBits weights (``bits`` 4 or 8, one scale, and unless ``symmetric`` one zero point,
    per ``block_size`` block), written as ``dst`` with its tensors in ``dst.name + '.data'``.

    A tied output layer (the embedding read through a Transpose) gets its own quantized copy:
    it is the largest matrix of a small model and is read at every generated token, while the
    embedding lookup reads one row a token and stays float."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(
        block_size=block_size,
        is_symmetric=symmetric,
        accuracy_level=accuracy_level,
        bits=bits,
    )
    graph = onnx.load(str(src))
    untie_output_layer(graph)
    quantizer = MatMulNBitsQuantizer(graph, algo_config=config)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer.process()
    save_graph(quantizer.model.model, dst)
    return dst


def untie_output_layer(model: Any) -> int:
    """Give each MatMul that reads a float initializer through a Transpose (a tied output layer
    reads the embedding so) a transposed constant of its own, which the quantizer can then
    quantize; the Transpose goes when nothing else reads it. Returns how many were untied."""
    from onnx import numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    untied = 0
    for node in list(graph.node):
        if node.op_type != "MatMul" or len(node.input) != 2:
            continue
        transpose = producers.get(node.input[1])
        if transpose is None or transpose.op_type != "Transpose":
            continue
        source = initializers.get(transpose.input[0])
        perm = [a.ints for a in transpose.attribute if a.name == "perm"]
        if source is None or len(source.dims) != 2 or (perm and list(perm[0]) != [1, 0]):
            continue
        name = f"{source.name}.untied_for.{node.name or untied}"
        weight = numpy_helper.to_array(source).T.copy()
        graph.initializer.append(numpy_helper.from_array(weight, name))
        node.input[1] = name
        untied += 1
        if not any(transpose.output[0] in other.input for other in graph.node):
            graph.node.remove(transpose)
    return untied


def keep_last_logits(model: Any) -> bool:
    """Let the graph compute the output layer for the last ``logits_to_keep`` positions only
    (a new int64 scalar input; all positions: the sequence's length). A prompt's run then
    skips the vocabulary-wide product at every position but the last (SmolLM2: 49,152 x 576
    multiply-adds a token). False when the graph has no MatMul writing ``logits``."""
    from onnx import TensorProto, helper

    graph = model.graph
    producer = next((n for n in graph.node if "logits" in n.output), None)
    if producer is None or producer.op_type != "MatMul":
        return False
    hidden = producer.input[0]
    graph.input.append(helper.make_tensor_value_info(KEEP_INPUT, TensorProto.INT64, []))
    graph.initializer.extend(
        [
            helper.make_tensor("keep.axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("keep.end", TensorProto.INT64, [1], [2**62]),
            helper.make_tensor("keep.zero", TensorProto.INT64, [1], [0]),
        ]
    )
    nodes = [
        helper.make_node("Neg", [KEEP_INPUT], ["keep.negative"], name="keep/Neg"),
        helper.make_node(
            "Unsqueeze", ["keep.negative", "keep.zero"], ["keep.start"], name="keep/Unsqueeze"
        ),
        helper.make_node(
            "Slice",
            [hidden, "keep.start", "keep.end", "keep.axes"],
            ["keep.hidden"],
            name="keep/Slice",
        ),
    ]
    position = list(graph.node).index(producer)
    for offset, node in enumerate(nodes):
        graph.node.insert(position + offset, node)
    producer.input[0] = "keep.hidden"
    return True


def save_graph(model: Any, dst: Path) -> None:
    """A graph with its weights in one ``.data`` file beside it (ONNX's 2 GB protobuf limit)."""
    import onnx

    for stale in (dst, dst.with_name(dst.name + ".data")):
        stale.unlink(missing_ok=True)
    onnx.save_model(
        model,
        str(dst),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=dst.name + ".data",
        size_threshold=1024,
    )


def cache_shape(model: Any) -> dict[str, int]:
    """The KV cache's shape per layer: layers, key/value heads and the size of each head."""
    config = model.config
    heads = config.num_attention_heads
    return {
        "num_layers": int(config.num_hidden_layers),
        "num_kv_heads": int(getattr(config, "num_key_value_heads", None) or heads),
        "head_dim": int(getattr(config, "head_dim", None) or config.hidden_size // heads),
    }
