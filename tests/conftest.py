"""Shared fixtures: a tiny random BERT (plumbing), the real MiniLM (quality), small data sets."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"

TOPICS = {
    "weather": ["sunny", "rain", "storm", "forecast", "cloudy", "snow"],
    "sports": ["goal", "match", "striker", "league", "tennis", "race"],
    "finance": ["bank", "money", "shares", "profit", "loan", "market"],
}
FILLER = ["the", "today", "we", "saw", "a", "lot", "of", "news", "about", "and", "it", "was"]


def make_examples(n_per_class: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            tokens = rng.sample(FILLER, 5) + rng.sample(words, 2)
            rng.shuffle(tokens)
            rows.append({"text": " ".join(tokens), "label": label})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from rec_edge.models import resolve_model

    return resolve_model("minilm")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A 2-layer random BERT with MiniLM's tokenizer: fast, for plumbing tests. Seeded: its
    weights must not depend on which tests drew from torch's global generator before it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def topic_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("topics")
    return {
        "train": write_jsonl(folder / "train.jsonl", make_examples(40, seed=1)),
        "test": write_jsonl(folder / "test.jsonl", make_examples(10, seed=2)),
    }


def tiny_train_config(tiny_model: str, topic_files: dict[str, Path], runs_dir: Path, **overrides):  # type: ignore[no-untyped-def]
    from rec_edge.config import TrainConfig

    options = dict(
        train_file=str(topic_files["train"]),
        test_file=str(topic_files["test"]),
        model=tiny_model,
        runs_dir=str(runs_dir),
        name="tiny",
        instruction="Which topic is this?",
        epochs=6,
        min_steps=0,  # plumbing: the epochs decide (the floor is tested in train/test_heads.py)
        batch_size=8,
        method="full",
        learning_rate=2e-3,
        max_length=32,
        early_stopping_patience=None,
    )
    options.update(overrides)
    return TrainConfig(**options)


@pytest.fixture(scope="session")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: str, topic_files: dict[str, Path]
):  # type: ignore[no-untyped-def]
    """A finished run of the tiny model on the synthetic topics (full fine-tuning: a random
    2-layer model learns the topics well enough for int8-vs-fp32 comparisons; LoRA is tested apart)."""
    from rec_edge.train import train

    return train(tiny_train_config(tiny_model, topic_files, tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_run) -> Path:  # type: ignore[no-untyped-def]
    """The tiny run exported with the default gate (int8 if it passes)."""
    from rec_edge.config import ExportConfig
    from rec_edge.export import export

    out = tmp_path_factory.mktemp("exports") / "tiny"
    return export(
        ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out), keep_fp32=True),
        log=lambda _: None,
    ).bundle_dir


@pytest.fixture(scope="session")
def rank_bundle(tmp_path_factory, tiny_model):  # type: ignore[no-untyped-def]
    """A rank run of the tiny model on synthetic interactions, exported in fp32."""
    from rec_edge.config import ExportConfig
    from rec_edge.export import export
    from rec_edge.train import train
    from tests.data.test_recommend import synthetic

    folder = tmp_path_factory.mktemp("rank")
    rows = synthetic(users=12, items=40, per_user=20, seed=4)
    (folder / "inter.jsonl").write_text(
        "".join(
            json.dumps({"user": u, "item": i, "rating": r, "timestamp": t}) + "\n"
            for u, i, r, t in rows
        )
    )
    (folder / "items.jsonl").write_text(
        "".join(json.dumps({"item": f"i{i}", "title": f"Movie {i}"}) + "\n" for i in range(40))
    )
    config = tiny_train_config(
        tiny_model,
        {"train": folder / "inter.jsonl", "test": folder / "inter.jsonl"},
        folder,
        name="rank",
        task="rank",
        items_file=str(folder / "items.jsonl"),
        test_file=None,
        max_length=96,
        epochs=2,
        negatives=2,  # the flattened [batch * 2] negative batch and its [batch, 2] scores
    )
    run = train(config)
    assert run.metrics["test"] is not None and run.metrics["test"]["n"] > 0
    run_json = json.loads((run.run_dir / "run.json").read_text())
    assert run_json["task"] == "rank" and run_json["labels"] == ["no", "yes"]
    assert run_json["templates"]["task"] == "rank"
    result = export(
        ExportConfig(run_dir=str(run.run_dir), out=str(folder / "bundle"), quantize="fp32"),
        log=lambda _: None,
    )
    return result.bundle_dir
