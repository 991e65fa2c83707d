"""`rec-edge convert`: an ONNX Runtime Mobile bundle (model.ort and its operator config) that the
Predictor loads and that answers as the .onnx does, and a Triton model repository whose
config.pbtxt parses into Triton's own ModelConfig protobuf and describes the model file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient
from click.testing import CliRunner
from google.protobuf import text_format

from rec_edge.cli import main
from rec_edge.errors import ConfigError
from rec_edge.export.formats import ConvertConfig, convert_bundle
from rec_edge.runtime import Predictor
from tests.helpers import make_examples

TEXTS = [r["text"] for r in make_examples(5, seed=17)]


def model_config_pb2() -> Any:
    """Triton's ModelConfig protobuf module, shipped in tritonclient (read from its file: the
    tritonclient.grpc package itself needs grpcio)."""
    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("model_config_pb2", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_ort_bundle_answers_as_the_onnx_one(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "mobile"
    result = CliRunner().invoke(
        main, ["convert", str(tiny_bundle), "--to", "ort", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "model.ort").is_file() and not (out / "model.onnx").exists()
    operators = (out / "model.required_operators.config").read_text()
    assert "ai.onnx;" in operators and "MatMul" in operators
    mobile, desktop = Predictor.load(out), Predictor.load(tiny_bundle)
    assert mobile.manifest.model_file == "model.ort"
    np.testing.assert_allclose(mobile.predict_proba(TEXTS), desktop.predict_proba(TEXTS), atol=1e-5)
    assert [p.label for p in mobile.predict(TEXTS)] == [p.label for p in desktop.predict(TEXTS)]
    assert np.allclose(mobile.embed(TEXTS), desktop.embed(TEXTS), atol=1e-5)


def test_a_triton_repository_parses_as_triton_reads_it(tiny_bundle: Path, tmp_path: Path) -> None:
    out = convert_bundle(
        ConvertConfig(str(tiny_bundle), "triton", str(tmp_path / "repo"), name="topics", threads=2)
    )
    model_dir = out / "topics"
    assert (model_dir / "1" / "model.onnx").is_file() and (model_dir / "tokenizer.json").is_file()
    pb = model_config_pb2()
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), pb.ModelConfig())
    assert config.name == "topics" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 32 and config.dynamic_batching.max_queue_delay_microseconds
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU
    assert config.parameters["intra_op_thread_count"].string_value == "2"
    manifest = json.loads((model_dir / "rec_edge.json").read_text())
    assert [i.name for i in config.input] == manifest["inputs"]
    assert [o.name for o in config.output] == manifest["outputs"]
    # the model file runs with the names and shapes the config declares (batch first)
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"))
    feeds = {
        i.name: np.ones([3, *[7 if d == -1 else d for d in i.dims]], np.int64) for i in config.input
    }
    results = session.run([o.name for o in config.output], feeds)
    for output, result in zip(config.output, results, strict=True):
        assert list(result.shape) == [3, *output.dims]
        assert output.data_type == pb.TYPE_FP32 and result.dtype == np.float32


def test_convert_refuses_what_it_cannot_write(
    decoder_bundle: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="decoder bundle"):
        convert_bundle(ConvertConfig(str(decoder_bundle), "ort", str(tmp_path / "x")))
    with pytest.raises(ConfigError, match="to='tflite'"):
        ConvertConfig(str(tiny_bundle), "tflite", str(tmp_path / "y"))
