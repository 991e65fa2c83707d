"""--precision: auto resolves against the hardware, bf16 mixed precision trains and learns, and a
machine without a bf16 unit falls back to fp32 with a note (simulated by patching the probe)."""

from __future__ import annotations

import json

import pytest

from rec_edge.config import TrainConfig
from rec_edge.errors import ConfigError
from rec_edge.train import train
from rec_edge.train import trainer as trainer_module
from rec_edge.train.precision import bf16_hardware, resolve_precision
from tests.helpers import tiny_train_config


def test_resolution_table() -> None:
    assert resolve_precision("auto", "AMX").used == "bf16"
    assert resolve_precision("auto", "AVX-512 BF16").used == "bf16"
    fallback = resolve_precision("auto", None)
    assert fallback.used == "fp32" and "no bf16 unit" in (fallback.note or "")
    assert resolve_precision("fp32", "AMX").used == "fp32"
    forced = resolve_precision("bf16", None)
    assert forced.used == "bf16" and "emulated" in (forced.note or "")
    assert bf16_hardware(cuda=False) in (None, "AMX", "AVX-512 BF16")
    with pytest.raises(ConfigError, match="precision='fp16'"):
        TrainConfig(train_file="x.jsonl", precision="fp16")


@pytest.mark.slow
def test_bf16_trains_learns_and_exports_float32_weights(tmp_path, tiny_model, topic_files) -> None:
    result = train(tiny_train_config(tiny_model, topic_files, tmp_path, precision="bf16"))
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["precision"]["used"] == "bf16" and run["config"]["precision"] == "bf16"
    assert result.metrics["test"]["accuracy"] >= 0.9  # three topics: chance is 0.33
    from safetensors import safe_open

    with safe_open(str(result.run_dir / "model" / "model.safetensors"), "pt") as weights:
        dtypes = {str(weights.get_tensor(name).dtype) for name in weights.keys()}  # noqa: SIM118
    assert dtypes == {"torch.float32"}  # master weights stay fp32: export parity is fp32


@pytest.mark.slow
@pytest.mark.parametrize("hardware, used", [(None, "fp32"), ("AVX-512 BF16", "bf16")])
def test_auto_follows_the_hardware(
    tmp_path, tiny_model, topic_files, monkeypatch, capsys, hardware, used
) -> None:
    monkeypatch.setattr(trainer_module, "bf16_hardware", lambda: hardware)
    config = tiny_train_config(tiny_model, topic_files, tmp_path, epochs=1)
    assert config.precision == "auto"
    result = train(config)
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["precision"]["requested"] == "auto" and run["precision"]["used"] == used
    assert result.precision.used == used
    if hardware is None:
        assert "no bf16 unit" in capsys.readouterr().err
