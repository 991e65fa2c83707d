"""A generate run of a language model (the tiny random Llama of conftest, SmolLM2's tokenizer and
chat template): a mixture of a classify part and chat rows, the loss on every answer and nothing
else, validation per part, and `rec-edge export RUN` to a generate bundle that writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.config import GenerationConfig, TrainConfig
from rec_edge.data.instructions import Conversation
from rec_edge.errors import ConfigError
from rec_edge.runtime import Generator
from rec_edge.runtime.generator import Usage
from tests.helpers import make_examples, write_jsonl

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Two plus two?"},
    {"role": "assistant", "content": "Four."},
    {"role": "user", "content": "And times three?"},
    {"role": "assistant", "content": "Twelve."},
]
ALPACA = {"instruction": "Name the topic.", "input": "a goal in the league", "output": "sports"}


@pytest.fixture(scope="module")
def mixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixture")
    write_jsonl(folder / "topics.jsonl", make_examples(8, seed=1))
    write_jsonl(folder / "chat.jsonl", [{"messages": CHAT}, ALPACA] * 6)
    (folder / "mix.toml").write_text(
        '[[parts]]\nfile = "topics.jsonl"\ntask = "classify"\n'
        'instruction = "Topic? One of: {labels}."\n\n[[parts]]\nfile = "chat.jsonl"\n',
        encoding="utf-8",
    )
    return folder / "mix.toml"


@pytest.fixture(scope="module")
def generate_run(tiny_llama: Path, mixture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rec_edge.train import train

    config = TrainConfig(
        train_file=str(mixture),
        task="generate",
        model=str(tiny_llama),
        runs_dir=str(tmp_path_factory.mktemp("generate-runs")),
        name="mix",
        max_steps=30,
        batch_size=8,
        learning_rate=1e-2,
        precision="fp32",
        validation_fraction=0.25,
    )
    return train(config).run_dir


def test_only_the_answers_carry_the_loss(tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    from rec_edge.convert.causal import chat_format
    from rec_edge.train.generate import _Encoder

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    fmt = chat_format(tokenizer)
    encoder = _Encoder(tokenizer, fmt, limit=512)
    messages = tuple((m["role"], m["content"]) for m in CHAT)
    ids, labels = encoder.row(Conversation(messages, "chat.jsonl:1", "chat"))
    learned = tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != -100])
    assert learned == f"Four.{fmt.end_of_turn}Twelve.{fmt.end_of_turn}"
    # the whole row is the chat template's rendering of the conversation
    whole = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert whole.startswith(tokenizer.decode(ids))
    # one user turn is asked as the bundle asks it: the chat format's prefix and suffix
    single = Conversation((("user", "Hi"), ("assistant", "Hello")), "x:1", "x")
    ids, labels = encoder.row(single)
    assert tokenizer.decode(ids) == fmt.prefix + "Hi" + fmt.suffix + "Hello" + fmt.end_of_turn
    # past the limit the user's words lose their end, then the answer its own
    short = _Encoder(tokenizer, fmt, limit=40)
    long = Conversation((("user", "word " * 100), ("assistant", "Hello")), "x:2", "x")
    ids, labels = short.row(long)
    assert len(ids) == 40 and short.cut == 1 and labels[-1] != -100


def test_the_run_records_its_parts_and_learns(generate_run: Path) -> None:
    run = json.loads((generate_run / "run.json").read_text())
    assert run["family"] == "decoder" and run["task"] == "generate"
    assert [(p["name"], p["task"]) for p in run["parts"]] == [
        ("topics", "classify"),
        ("chat", "generate"),
    ]
    assert run["examples"] == sum(p["train"] for p in run["parts"])
    assert run["loss"]["last"] < run["loss"]["first"] - 0.3
    validation = run["metrics"]["validation"]
    assert validation["n"] == sum(p["validation"] for p in run["parts"]) and validation["loss"] > 0
    assert validation["parts"]["topics"]["n"] == 6  # 2 a label held out


def test_export_run_makes_a_generate_bundle_that_writes(generate_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = CliRunner().invoke(
        main, ["export", str(generate_run), "--out", str(out), "--weights", "fp32", "--json"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "rec_edge.json").read_text())
    assert manifest["task"] == "generate"
    generator = Generator.load(out)
    usage = Usage()
    generator.generate(generator.prompt("Two plus two?"), GenerationConfig(max_new_tokens=4), usage)
    assert 1 <= usage.completion_tokens <= 4 and usage.prompt_tokens > 4


def test_generate_needs_a_language_model(tmp_path: Path) -> None:
    from rec_edge.train import train

    data = write_jsonl(tmp_path / "rows.jsonl", [ALPACA] * 4)
    with pytest.raises(ConfigError, match="--model smollm2"):
        train(TrainConfig(train_file=str(data), task="generate", runs_dir=str(tmp_path)))
