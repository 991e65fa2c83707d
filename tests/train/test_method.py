"""--method auto: full fine-tuning for a small classify run, LoRA for the rest."""

import json

import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.config import FULL_FINE_TUNING_MAX_EXAMPLES, TrainConfig


def test_auto_method_by_data_size_and_task() -> None:
    classify = TrainConfig(train_file="train.jsonl")
    assert classify.method == "auto"
    assert classify.resolved_method(16) == "full"
    assert classify.resolved_method(FULL_FINE_TUNING_MAX_EXAMPLES) == "full"
    assert classify.resolved_method(FULL_FINE_TUNING_MAX_EXAMPLES + 1) == "lora"
    assert TrainConfig(train_file="ml-100k", task="rank").resolved_method(64) == "lora"
    assert TrainConfig(train_file="t", method="lora").resolved_method(16) == "lora"
    # each method's learning rate, scaled down for 16 examples
    assert classify.resolved_learning_rate(16) == 5e-5 * 0.125
    assert classify.resolved_learning_rate(10_000) == 1e-3


@pytest.mark.slow
def test_a_few_shot_run_fine_tunes_every_weight(tmp_path, tiny_model) -> None:
    rows = [
        {"text": f"text {i} about {'sport' if i % 2 else 'money'}", "label": i % 2}
        for i in range(16)
    ]
    data = tmp_path / "few.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    base = [
        "train",
        str(data),
        "--model",
        tiny_model,
        "--runs-dir",
        str(tmp_path),
        "--max-steps",
        "2",
    ]
    lora = ["--method", "lora", "--no-compare-templates"]
    for name, extra, method in (("auto", [], "full"), ("lora", lora, "lora")):
        result = CliRunner().invoke(main, [*base, "--name", name, *extra])
        assert result.exit_code == 0, result.output
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert run["config"]["method"] == method  # run.json records what was resolved
        assert (tmp_path / name / "adapter").is_dir() == (method == "lora")
        # 16 examples and no template option: the raw text and the instruction compared
        assert ("templates_compared" in run) == (name == "auto")
        assert ("templates compared:" in result.output) == (name == "auto")
