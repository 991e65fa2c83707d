"""The training-speed defaults: LoRA in the upper half of the layers (backpropagation stops
below them), dropout off, and the collaborative stage's bulk encoding by an int8 session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rec_edge.config import TrainConfig
from rec_edge.errors import ConfigError
from rec_edge.train.lora import adapted_layers, default_targets, wrap_lora


def test_adapted_layers_and_their_regex() -> None:
    assert adapted_layers(6, None) == [3, 4, 5]
    assert adapted_layers(5, None) == [2, 3, 4]  # the upper half, rounded up
    assert adapted_layers(6, 2) == [4, 5] and adapted_layers(6, 99) == list(range(6))
    import re

    pattern = default_targets("bert", [4, 5])
    assert pattern is not None
    assert re.fullmatch(pattern, "base_model.model.encoder.layer.5.attention.self.query")
    assert re.fullmatch(pattern, "encoder.layer.4.output.dense")
    assert not re.fullmatch(pattern, "encoder.layer.3.output.dense")
    assert not re.fullmatch(pattern, "encoder.layer.14.output.dense")
    assert default_targets("unknown-type", [0]) is None
    defaults = TrainConfig(train_file="x.jsonl")
    assert (defaults.dropout, defaults.lora_dropout, defaults.lora_layers) == (0.0, 0.0, None)
    with pytest.raises(ConfigError, match="lora_layers and target_modules together"):
        TrainConfig(train_file="x.jsonl", lora_layers=2, target_modules=["query"])
    with pytest.raises(ConfigError, match="lora_layers=0"):
        TrainConfig(train_file="x.jsonl", lora_layers=0)


def test_backpropagation_stops_below_the_adapted_layers(tiny_model) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModel

    model = wrap_lora(AutoModel.from_pretrained(tiny_model), 4, 8, 0.0, None, features=True)
    adapted = {
        n.split("layer.")[1].split(".")[0] for n, _ in model.named_parameters() if "lora_" in n
    }
    assert adapted == {"1"}  # 2 layers: the upper one
    every = wrap_lora(
        AutoModel.from_pretrained(tiny_model), 4, 8, 0.0, None, features=True, lora_layers=2
    )
    assert {n.split("layer.")[1][0] for n, _ in every.named_parameters() if "lora_" in n} == {
        "0",
        "1",
    }

    seen: list[int] = []  # which layers the backward pass ran through
    for index, layer in enumerate(model.base_model.model.encoder.layer):
        layer.register_full_backward_hook(lambda *_, i=index: seen.append(i))
    batch = {
        "input_ids": torch.tensor([[101, 2054, 2003, 102]]),
        "attention_mask": torch.ones(1, 4),
    }
    model(**batch).last_hidden_state.sum().backward()
    assert seen == [1]


@pytest.mark.slow  # trains and exports the tiny rank run
def test_int8_bulk_encoding_agrees_with_pytorch(rank_bundle: Path) -> None:
    from rec_edge.convert.bulk import int8_session_logits
    from rec_edge.convert.onnx_export import torch_logits

    run_dir = rank_bundle.parent / "rank"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["collaborative"]["encoder"] == "int8"  # the stage's default engine
    texts = [f"A user enjoyed Movie {i} and Movie {i + 1}." for i in range(20)] + ["Movie 3"] * 3
    fp32 = torch_logits(run_dir / "model", texts, run["max_length"])
    int8 = int8_session_logits(run_dir / "model", texts, run["max_length"], batch_size=8)
    assert int8.shape == fp32.shape and np.allclose(int8[-1], int8[-3])  # repeats: one row
    correlation = np.corrcoef(fp32.ravel(), int8.ravel())[0, 1]
    assert correlation > 0.99, correlation
