"""The description head end to end with the real MiniLM: zero-shot (``shots=0``) from label
descriptions alone, a label added at export without training, the head kept float in int8, and
the torch-free runtime reading the bundle as any other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from rec_edge.config import ExportConfig, TrainConfig
from rec_edge.convert.head_graph import HEAD_PREFIX
from rec_edge.errors import ConfigError
from rec_edge.export import export
from rec_edge.runtime import Predictor
from tests.helpers import make_examples, write_jsonl

pytestmark = pytest.mark.slow
QUIET = {"log": lambda _: None}


@pytest.fixture(scope="module")
def zero_shot_run(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Path:
    """MiniLM, zero-shot on two of the three synthetic topics (finance is held back)."""
    from rec_edge.train import train

    folder = tmp_path_factory.mktemp("zero-shot")
    rows = [r for r in make_examples(20, seed=1) if r["label"] != "finance"]
    write_jsonl(folder / "train.jsonl", rows)
    write_jsonl(folder / "test.jsonl", make_examples(10, seed=2))
    result = train(
        TrainConfig(
            train_file=str(folder / "train.jsonl"),
            model=minilm_path,
            shots=0,
            use_templates=False,
            runs_dir=str(folder / "runs"),
            name="zero",
            max_length=32,
        )
    )
    return result.run_dir


def test_zero_shot_run_scores_from_descriptions(zero_shot_run: Path) -> None:
    run = json.loads((zero_shot_run / "run.json").read_text())
    assert run["steps"] == 0 and run["labels"] == ["sports", "weather"]
    assert run["head"]["descriptions"] == {
        "sports": "This is about sports.",
        "weather": "This is about weather.",
    }
    # keyword topics: two labels, chance 0.5; nothing was trained
    assert run["metrics"]["validation"]["accuracy"] >= 0.8


def test_added_label_is_predicted_without_training(zero_shot_run: Path, tmp_path: Path) -> None:
    test = make_examples(10, seed=2)
    write_jsonl(tmp_path / "eval.jsonl", test)
    result = export(
        ExportConfig(
            run_dir=str(zero_shot_run),
            out=str(tmp_path / "bundle"),
            add_labels={"finance": "This is about money, banks and markets."},
            eval_file=str(tmp_path / "eval.jsonl"),  # the gate scores all three labels
        ),
        **QUIET,
    )
    assert result.parity["max_abs_diff"] <= 1e-4
    predictor = Predictor.load(result.bundle_dir)
    assert predictor.labels == ["sports", "weather", "finance"]
    assert predictor.manifest.source["added_labels"] == {
        "finance": "This is about money, banks and markets."
    }
    predicted = [p.label for p in predictor.predict([r["text"] for r in test])]
    finance = [p for p, r in zip(predicted, test, strict=True) if r["label"] == "finance"]
    assert np.mean([p == "finance" for p in finance]) >= 0.7  # chance is 1/3
    assert np.mean([p == r["label"] for p, r in zip(predicted, test, strict=True)]) >= 0.7
    graph = onnx.load(str(result.bundle_dir / "model.onnx")).graph
    head = [n for n in graph.node if n.name.startswith(HEAD_PREFIX)]
    assert head and not [n for n in head if "Integer" in n.op_type or "Quantize" in n.op_type]
    assert predictor.manifest.recipe["kind"] == "calibrated"
    # the float64 head: a text's scores are bit for bit the same whatever it is batched with
    # (texts of very different lengths, so that each batch pads differently)
    texts = [r["text"] * (1 + i % 4) for i, r in enumerate(test)]
    alone = np.concatenate([predictor.logits([t]) for t in texts])
    assert np.array_equal(predictor.logits(texts, batch_size=7), alone)
    assert np.array_equal(predictor.logits(texts[::-1], batch_size=32)[::-1], alone)


def test_add_label_errors(zero_shot_run: Path, tmp_path: Path, tiny_model, topic_files) -> None:
    from rec_edge.train import train
    from tests.helpers import tiny_train_config

    with pytest.raises(ConfigError, match="already labels of the run"):
        export(
            ExportConfig(
                run_dir=str(zero_shot_run),
                out=str(tmp_path / "b"),
                add_labels={"sports": "This is about sports."},
            ),
            **QUIET,
        )
    linear = train(
        tiny_train_config(tiny_model, topic_files, tmp_path, name="linear", head="linear", epochs=1)
    )
    assert json.loads((linear.run_dir / "run.json").read_text())["head"]["kind"] == "labels"
    with pytest.raises(ConfigError, match="needs a run trained with the description head"):
        export(
            ExportConfig(
                run_dir=str(linear.run_dir), out=str(tmp_path / "c"), add_labels={"x": "About x."}
            ),
            **QUIET,
        )
    # the linear head still exports, as old runs do
    bundle = export(
        ExportConfig(run_dir=str(linear.run_dir), out=str(tmp_path / "d"), quantize="fp32"),
        **QUIET,
    ).bundle_dir
    assert Predictor.load(bundle).predict(["sunny rain"])[0].label in (
        "finance",
        "sports",
        "weather",
    )
