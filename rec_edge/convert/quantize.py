"""Quantization recipes: calibrated int8, dynamic int8 (s8 weights), static int8 (QDQ), fp16, or none.

Dynamic int8 quantizes each activation with a scale taken from the whole tensor at run time: the
whole padded batch, so a text's scores depend on its batch-mates. ``calibrated`` is the same graph
(fused integer Attention, embedding and MatMul kernels) with each activation's scale fixed from
calibration texts: a text's scores depend on that text alone, at the speed of dynamic int8. Static
QDQ is invariant too but slower: onnxruntime fuses QDQ into integer kernels only for u8
activations and leaves attention unfused (benchmarks/RESULTS.md, "Batch invariance").

The fused graph (Attention, SkipLayerNormalization) needs ``DefaultTensorType`` for the
quantizer's shape inference; optimum's ORTQuantizer cannot pass it, so onnxruntime's functions are
called directly. Weights are always s8: optimum's avx2 preset (u8 weights) ran 1.6x slower on an
AVX-512 VNNI CPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.calibrate import CalibrationDataReader

from rec_edge.convert.head_graph import HEAD_PREFIX, head_nodes
from rec_edge.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str  # fp32 | calibrated | dynamic | static | fp16
    per_channel: bool = False
    reduce_range: bool = False  # 7-bit weights: no u8*s8 overflow on CPUs without VNNI
    exclude: tuple[str, ...] = ()  # nodes left in fp32

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def batch_invariant(self) -> bool:
        """By construction; the gate measures it on every candidate all the same."""
        return self.kind != "dynamic"

    def with_exclusions(self, nodes: Sequence[str]) -> Recipe:
        return dataclasses.replace(
            self, name=f"{self.name}+fp32x{len(nodes)}", exclude=tuple(nodes)
        )


RECIPES = {
    "fp32": Recipe("fp32", "fp32"),
    "calibrated": Recipe("calibrated", "calibrated"),
    "calibrated-per-channel": Recipe("calibrated-per-channel", "calibrated", per_channel=True),
    "calibrated-per-channel-rr": Recipe(
        "calibrated-per-channel-rr", "calibrated", per_channel=True, reduce_range=True
    ),
    "dynamic": Recipe("dynamic", "dynamic"),
    "dynamic-per-channel": Recipe("dynamic-per-channel", "dynamic", per_channel=True),
    "dynamic-per-channel-rr": Recipe(
        "dynamic-per-channel-rr", "dynamic", per_channel=True, reduce_range=True
    ),
    "static": Recipe("static", "static", per_channel=True),
    "fp16": Recipe("fp16", "fp16"),
    # presets by target CPU (7-bit weights where u8*s8 products can overflow: no VNNI)
    "avx512-vnni": Recipe("avx512-vnni", "calibrated", per_channel=True),
    "avx2": Recipe("avx2", "calibrated", per_channel=True, reduce_range=True),
    "arm64": Recipe("arm64", "calibrated", per_channel=True),
}
# What the accuracy gate tries, in this order (it breaks ties of the shift against fp32); then
# the sensitivity pass. Both run the same integer kernels, so timings never decide between them.
# Per-tensor weights ("calibrated") are left out: same kernels and speed, and on the fine-tuned
# few-shot runs measured they moved the probabilities 2 to 5 times as far from fp32 as per-channel
# weights and cost 3 to 5 accuracy points on the test sets (benchmarks/RESULTS.md, "int8 on long
# inputs"); it stays available by name.
GATE_CANDIDATES = ("calibrated-per-channel", "calibrated-per-channel-rr")
# With allow_batch_variance: the dynamic forms too (slightly faster at large batches).
VARIANT_CANDIDATES = ("dynamic-per-channel", "dynamic-per-channel-rr")


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(
            f"Unknown quantization recipe {name!r} (known: auto, {', '.join(RECIPES)})."
        )
    return RECIPES[name]


class _Feeds(CalibrationDataReader):
    """onnxruntime's CalibrationDataReader over prepared feed dicts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        super().__init__()
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def quantize(
    src: Path,
    dst: Path,
    recipe: Recipe,
    calibration: list[dict[str, np.ndarray]] | None = None,
    unfused_src: Path | None = None,
) -> None:
    """Write ``src`` quantized by ``recipe`` to ``dst``. Static quantization reads ``unfused_src``
    (QDQ pairs around plain MatMuls; with s8 activations onnxruntime's x86 kernels do not fuse
    them, so each weight is dequantized at every call: the slow recipe, kept for comparison)."""
    if recipe.kind == "fp32":
        onnx.save(onnx.load(str(src)), str(dst))
    elif recipe.kind == "dynamic":
        _quantize_dynamic(src, dst, recipe)
    elif recipe.kind == "calibrated":
        if not calibration:
            raise ConfigError(
                "Calibrated quantization needs calibration data (a sample of the training texts)."
            )
        dynamic = dst.with_name(f"{dst.stem}.dynamic.onnx")
        _quantize_dynamic(src, dynamic, recipe)
        fix_activation_scales(dynamic, dst, calibration)
        dynamic.unlink()
    elif recipe.kind == "static":
        if not calibration:
            raise ConfigError(
                "Static quantization needs calibration data (a sample of the training texts)."
            )
        quantize_static(
            unfused_src or src,
            dst,
            _Feeds(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gather"],
            nodes_to_exclude=_excluded(unfused_src or src, recipe),
            extra_options={
                "DefaultTensorType": onnx.TensorProto.FLOAT,
                "ActivationSymmetric": False,
                "WeightSymmetric": True,
            },
        )
    elif recipe.kind == "fp16":
        from onnxruntime.transformers.onnx_model import OnnxModel

        model = OnnxModel(onnx.load(str(src)))
        model.convert_float_to_float16(keep_io_types=True)
        model.save_model_to_file(str(dst))
    else:  # pragma: no cover - Recipe kinds are fixed above
        raise ConfigError(f"Unknown recipe kind {recipe.kind!r}")


def _quantize_dynamic(src: Path, dst: Path, recipe: Recipe) -> None:
    quantize_dynamic(
        src,
        dst,
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=_excluded(src, recipe),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def activation_ranges(
    model: onnx.ModelProto, tensors: Sequence[str], calibration: list[dict[str, np.ndarray]]
) -> dict[str, tuple[float, float]]:
    """(min, max) of each named tensor over the calibration feeds, 0 included, padding excluded
    (token rows where the attention mask is 0 are left out)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {o.name for o in probe.graph.output}
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for name in tensors
        if name not in outputs
    )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    ranges = dict.fromkeys(tensors, (0.0, 0.0))
    for feed in calibration:
        mask = feed["attention_mask"].astype(bool) if "attention_mask" in feed else None
        for name, value in zip(tensors, session.run(list(tensors), feed), strict=True):
            if mask is not None and value.ndim == 3 and value.shape[:2] == mask.shape:
                value = value[mask]  # [batch, tokens, features] -> the real tokens' rows
            low, high = ranges[name]
            ranges[name] = (min(low, float(value.min())), max(high, float(value.max())))
    return ranges


def fix_activation_scales(
    src: Path, dst: Path, calibration: list[dict[str, np.ndarray]]
) -> dict[str, tuple[float, float]]:
    """Replace each DynamicQuantizeLinear of a dynamically quantized graph by a QuantizeLinear
    with the u8 scale and zero point that DynamicQuantizeLinear would compute over the
    calibration texts' range. The integer kernels after it (QAttention, MatMulInteger) are
    unchanged; a text's scores no longer depend on what it is batched with. Returns the ranges."""
    model = onnx.load(str(src))
    graph = model.graph
    dynamic = [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]
    ranges = activation_ranges(model, [n.input[0] for n in dynamic], calibration)
    for node in dynamic:
        low, high = ranges[node.input[0]]
        scale = (high - low) / 255.0 or 1.0  # an all-zero tensor: any scale
        zero_point = int(np.clip(round(-low / scale), 0, 255))
        quantized, scale_name, zero_name = node.output
        graph.initializer.extend(
            [
                onnx.numpy_helper.from_array(np.array(scale, np.float32), scale_name),
                onnx.numpy_helper.from_array(np.array(zero_point, np.uint8), zero_name),
            ]
        )
        fixed = onnx.helper.make_node(
            "QuantizeLinear", [node.input[0], scale_name, zero_name], [quantized], name=node.name
        )
        graph.node.insert(list(graph.node).index(node), fixed)
        graph.node.remove(node)
    onnx.save(model, str(dst))
    return ranges


def quantizable_nodes(path: Path) -> list[str]:
    """Names of the nodes dynamic quantization turns into integer ops (MatMul, Attention); the
    description head's stay float whatever the recipe."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return [
        n.name
        for n in graph.node
        if n.op_type in ("MatMul", "Attention") and n.name and not n.name.startswith(HEAD_PREFIX)
    ]


def _excluded(src: Path, recipe: Recipe) -> list[str]:
    """The recipe's fp32 nodes and the description head's (see convert.head_graph)."""
    return list(recipe.exclude) + head_nodes(src)
