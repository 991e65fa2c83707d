"""Instruction data for a language model (torch-free): Alpaca rows, chat rows and TOML mixtures of
tasks read into conversations; every bad row named by its file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rec_edge.data.instructions import read_conversations, read_instruction_data
from rec_edge.data.prompts import label_instruction
from rec_edge.errors import DataError
from tests.helpers import make_examples, write_jsonl

ALPACA = [
    {"instruction": "Say hello.", "input": "", "output": "Hello!"},
    {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
]
CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Two plus two?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And times three?"},
        {"role": "assistant", "content": "Twelve."},
    ]
}


def test_alpaca_and_chat_rows_become_conversations(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [*ALPACA, CHAT])
    rows = read_conversations(path, "rows")
    assert rows[0].messages == (("user", "Say hello."), ("assistant", "Hello!"))
    assert rows[1].messages == (("user", "Translate to French.\n\ncat"), ("assistant", "chat"))
    assert [role for role, _ in rows[2].messages] == [m["role"] for m in CHAT["messages"]]
    assert [r.source for r in rows] == [f"{path}:{n}" for n in (1, 2, 3)]


def test_every_bad_row_is_named_by_its_line(tmp_path: Path) -> None:
    bad = [
        ALPACA[0],
        {"instruction": "x"},  # no output
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}]},  # no answer
        {"instruction": "x", "output": 3},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in bad) + "\nnot json\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_conversations(path, "bad")
    message = str(caught.value)
    for line in (2, 3, 4, 5, 6):
        assert f"{path}:{line}:" in message
    assert f"{path}:1:" not in message and "role one of system, user, assistant" in message
    skipped: list[str] = []
    assert len(read_conversations(path, "bad", skip_invalid=True, skipped=skipped)) == 1
    assert len(skipped) == 5


def test_a_mixture_reads_each_part_with_its_own_instruction(tmp_path: Path) -> None:
    (tmp_path / "topics").mkdir()
    write_jsonl(tmp_path / "topics" / "train.jsonl", make_examples(10, seed=1))
    write_jsonl(tmp_path / "alpaca.jsonl", ALPACA * 10)
    mixture = tmp_path / "mix.toml"
    mixture.write_text(
        '[[parts]]\nfile = "topics/train.jsonl"\ntask = "classify"\nshots = 4\n'
        'instruction = "Pick the topic: {labels}."\nlabel_names = { weather = "the weather" }\n\n'
        '[[parts]]\nfile = "alpaca.jsonl"\nshots = 5\n',
        encoding="utf-8",
    )
    data = read_instruction_data(mixture, validation_fraction=0.2, seed=3)
    assert [(p["name"], p["task"], p["train"], p["validation"]) for p in data.parts] == [
        ("topics", "classify", 12, 6),
        ("alpaca", "generate", 5, 4),
    ]
    topics = [c for c in data.train if c.part == "topics"]
    words = dict(topics[0].words)
    assert words == {"finance": "finance", "sports": "sports", "weather": "the weather"}
    orders = set()
    for conversation in topics:
        user, answer = conversation.messages[0][1], conversation.messages[1][1]
        instruction, text = user.split("\n\n", 1)
        listed = instruction.removeprefix("Pick the topic: ").removesuffix(".").split(", ")
        assert sorted(listed) == sorted(words.values()) and answer == words[conversation.label]
        orders.add(tuple(listed))
    assert len(orders) > 1  # the options come in several orders: their order is no cue
    # the hold-out is drawn before the shots: no validation text is trained on
    held = {c.messages[0][1].split("\n\n", 1)[1] for c in data.validation if c.part == "topics"}
    assert not held & {c.messages[0][1].split("\n\n", 1)[1] for c in topics}


def test_a_bad_mixture_names_its_part(tmp_path: Path) -> None:
    mixture = tmp_path / "mix.toml"
    mixture.write_text('[[parts]]\nfile = "a.jsonl"\ntask = "summarize"\nshot = 3\n')
    with pytest.raises(DataError) as caught:
        read_instruction_data(mixture, 0.1, 0)
    assert "part 1: task='summarize'" in str(caught.value) and "['shot']" in str(caught.value)
    mixture.write_text("parts = 3\n")
    with pytest.raises(DataError, match=r"\[\[parts\]\]"):
        read_instruction_data(mixture, 0.1, 0)
    mixture.write_text('[[parts]]\nfile = "missing.jsonl"\n')
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        read_instruction_data(mixture, 0.1, 0)


def test_label_instruction_offers_the_words() -> None:
    assert label_instruction(None, ["a", "b"]) == "Answer with one of: a, b."
    assert label_instruction("Topic? ({labels})", ["a", "b"]) == "Topic? (a, b)"
    assert label_instruction("Topic?", ["a", "b"]) == "Topic?"
