"""Quantization recipes: dynamic int8 (s8 weights), static int8 (QDQ), fp16, or none.

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

from rec_edge.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str  # fp32 | dynamic | static | fp16
    per_channel: bool = False
    reduce_range: bool = False  # 7-bit weights: no u8*s8 overflow on CPUs without VNNI
    exclude: tuple[str, ...] = ()  # nodes left in fp32

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_exclusions(self, nodes: Sequence[str]) -> Recipe:
        return dataclasses.replace(
            self, name=f"{self.name}+fp32x{len(nodes)}", exclude=tuple(nodes)
        )


RECIPES = {
    "fp32": Recipe("fp32", "fp32"),
    "dynamic": Recipe("dynamic", "dynamic"),
    "dynamic-per-channel": Recipe("dynamic-per-channel", "dynamic", per_channel=True),
    "dynamic-per-channel-rr": Recipe(
        "dynamic-per-channel-rr", "dynamic", per_channel=True, reduce_range=True
    ),
    "static": Recipe("static", "static", per_channel=True),
    "fp16": Recipe("fp16", "fp16"),
    # presets by target CPU
    "avx512-vnni": Recipe("avx512-vnni", "dynamic", per_channel=True),
    "avx2": Recipe("avx2", "dynamic", per_channel=True, reduce_range=True),
    "arm64": Recipe("arm64", "dynamic", per_channel=True),
}
# What the accuracy gate tries first, in order of expected speed; then the sensitivity pass.
GATE_CANDIDATES = ("dynamic", "dynamic-per-channel", "dynamic-per-channel-rr", "static")


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
    (QDQ pairs with plain MatMuls, which onnxruntime fuses at load time)."""
    if recipe.kind == "fp32":
        onnx.save(onnx.load(str(src)), str(dst))
    elif recipe.kind == "dynamic":
        quantize_dynamic(
            src,
            dst,
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(recipe.exclude),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
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
            nodes_to_exclude=list(recipe.exclude),
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


def quantizable_nodes(path: Path) -> list[str]:
    """Names of the nodes dynamic quantization turns into integer ops (MatMul, Attention)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Attention") and n.name]
