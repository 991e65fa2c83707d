"""The default --max-length: the model's own limit, so that long texts are read whole."""

import json
from types import SimpleNamespace

import pytest
from transformers import AutoConfig, AutoTokenizer

from rec_edge.models import MAX_DEFAULT_LENGTH, default_max_length


def test_default_max_length_is_the_least_of_the_model_limits(minilm_path, tiny_model) -> None:
    minilm = default_max_length(
        minilm_path,
        AutoTokenizer.from_pretrained(minilm_path),
        AutoConfig.from_pretrained(minilm_path),
    )
    assert minilm == 256  # sentence_bert_config.json: what all-MiniLM-L6-v2 was trained to read
    tiny = default_max_length(
        tiny_model,
        AutoTokenizer.from_pretrained(tiny_model),
        AutoConfig.from_pretrained(tiny_model),
    )
    assert tiny == 128  # its position embeddings, below the tokenizer's 512
    long_context = SimpleNamespace(max_position_embeddings=8192)
    unset = SimpleNamespace(model_max_length=int(1e30))
    assert default_max_length(tiny_model + "-absent", unset, long_context) == MAX_DEFAULT_LENGTH


@pytest.mark.slow
def test_train_reads_long_texts_whole_by_default(tmp_path, tiny_model) -> None:
    from click.testing import CliRunner

    from rec_edge.cli import main

    sentence = "the match ended with a late goal and the crowd cheered"
    rows = [
        {"text": " ".join([sentence] * (2 + i % 5)), "label": "sport" if i % 2 else "other"}
        for i in range(16)
    ]  # 22 to 66 words
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = ["train", str(data), "--model", tiny_model, "--runs-dir", str(tmp_path)]
    args += ["--name", "long", "--max-steps", "2", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["truncated_train_examples"] == 0
    run = json.loads((tmp_path / "long" / "run.json").read_text())
    assert run["max_length"] == run["config"]["max_length"] == 128  # the tiny model's positions

    result = CliRunner().invoke(
        main, [*args[:-5], "--name", "cut", "--max-length", "16", *args[-3:]]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["truncated_train_examples"] > 0
