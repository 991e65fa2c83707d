"""LoRA on a causal language model through its chat format (the tiny random Llama of conftest,
SmolLM2's tokenizer): the answer's loss falls, the run exports to a decoder bundle, and the
torch-free Generator picks the label the run's own PyTorch evaluation picked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.config import DecoderExportConfig, TrainConfig
from rec_edge.runtime import Generator
from tests.helpers import make_examples, write_jsonl


@pytest.fixture(scope="module")
def decoder_run(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rec_edge.train import train

    folder = tmp_path_factory.mktemp("decoder-run")
    config = TrainConfig(
        train_file=str(write_jsonl(folder / "train.jsonl", make_examples(8, seed=1))),
        validation_file=str(write_jsonl(folder / "valid.jsonl", make_examples(4, seed=2))),
        model=str(tiny_llama),
        runs_dir=str(folder / "runs"),
        name="tiny-decoder",
        label_names={"weather": "the weather", "sports": "sport", "finance": "money"},
        max_steps=40,
        batch_size=8,
        learning_rate=1e-2,
        precision="fp32",
    )
    return train(config).run_dir


def test_the_run_records_a_decoder_and_its_answer_loss_falls(decoder_run: Path) -> None:
    run = json.loads((decoder_run / "run.json").read_text())
    assert run["family"] == "decoder" and run["task"] == "classify"
    assert run["labels"] == ["finance", "sports", "weather"]
    assert run["label_words"]["weather"] == "the weather"
    assert run["instruction"] == "Answer with one of: money, sport, the weather."
    # a random 64-wide model cannot grow confident logits over 49,152 tokens: the loss falls
    # from ln(49152) = 10.8 by about 0.8 nats in 40 steps (10.69 -> 9.86 when written)
    assert run["steps"] == 40 and run["loss"]["last"] < run["loss"]["first"] - 0.3
    assert run["metrics"]["validation"]["n"] == 12
    assert (decoder_run / "model" / "config.json").is_file()  # merged: no adapter left to load
    assert not (decoder_run / "model" / "adapter_config.json").exists()


def test_the_bundle_picks_the_labels_pytorch_picked(decoder_run: Path, tmp_path: Path) -> None:
    from rec_edge.export.decoder import export_decoder

    run = json.loads((decoder_run / "run.json").read_text())
    config = DecoderExportConfig(
        model=str(decoder_run / "model"),
        out=str(tmp_path / "bundle"),
        task="classify",
        labels=run["label_words"],
        instruction=run["instruction"],
        weights="fp32",
        calibrate="off",  # as PyTorch scored the run's validation rows
    )
    export_decoder(config)
    generator = Generator.load(tmp_path / "bundle")
    rows = [json.loads(line) for line in (decoder_run.parent.parent / "valid.jsonl").open()]
    predicted = [p.label for p in generator.predict([r["text"] for r in rows])]
    accuracy = sum(p == r["label"] for p, r in zip(predicted, rows, strict=True)) / len(rows)
    assert accuracy == pytest.approx(run["metrics"]["validation"]["accuracy"], abs=1e-4)


def test_cli_exports_a_decoder_run_with_its_labels(decoder_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-bundle"
    result = CliRunner().invoke(main, ["export", str(decoder_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "rec_edge.json").read_text())
    assert manifest["task"] == "classify" and manifest["family"] == "decoder"
    assert manifest["labels"] == ["finance", "sports", "weather"]
    # the gate judged the candidates by label accuracy on the run's 12 validation rows
    run = json.loads((decoder_run / "run.json").read_text())
    gate = manifest["metrics"]["gate"]
    assert [row["rows"] for row in gate] == [12] * len(gate)
    # the labels' prior is subtracted only where it raised fp32's accuracy on those rows
    calibration = manifest["recipe"]["calibration"]
    assert calibration["rows"] == 12 and calibration["rule"] == "auto"
    assert calibration["accuracy"] == pytest.approx(
        run["metrics"]["validation"]["accuracy"], abs=1e-4
    )
    used = calibration["calibrated_accuracy"] > calibration["accuracy"]
    assert calibration["used"] == used
    assert ("label_prior" in manifest["decoder"]) == used
    assert gate[0]["fp32_accuracy"] == max(
        calibration["accuracy"], calibration["calibrated_accuracy"]
    )
    assert "label prior: " in result.output
    assert all(row["kept"] == (row is gate[-1]) for row in gate)
    kept = gate[-1]
    assert kept["weights"] == "fp32" or kept["accuracy"] >= kept["fp32_accuracy"] - 0.01
    assert all(row["accuracy"] < row["fp32_accuracy"] - 0.01 for row in gate[:-1])
    assert "label accuracy on 12 validation rows" in manifest["recipe"]["choice_rule"]
    assert "accuracy" in result.output and "validation rows" in result.output
    assert Generator.load(out).predict(["the match ended in a goal"])[0].label in manifest["labels"]
