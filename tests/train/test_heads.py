"""The description head: its numpy and torch forms agree, it saves and loads, it extends, and
the schedule's floor gives a few examples enough steps (tiny model: plumbing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rec_edge.config import TrainConfig
from rec_edge.data.templates import TemplateSet
from rec_edge.errors import ConfigError
from rec_edge.modeling.heads import (
    LabelHead,
    description_classifier,
    embed,
    extend_head,
    initial_head,
    pair_loss,
)
from tests.helpers import make_examples, tiny_train_config, write_jsonl


def test_describe_uses_written_descriptions_then_the_template() -> None:
    templates = TemplateSet(
        ["{text}"],
        label_names={"card_arrival": "card not arrived"},
        descriptions={"refund": "The customer wants their money back."},
    )
    assert templates.describe("refund") == "The customer wants their money back."
    assert templates.describe("card_arrival") == "This is about card not arrived."
    assert templates.describe("top_up") == "This is about top up."
    again = TemplateSet.from_dict(templates.to_dict())
    assert again.describe("refund") == templates.describe("refund")
    with pytest.raises(ConfigError, match="exactly the"):
        TemplateSet(["{text}"], description_template="About {text}.")


def test_schedule_has_a_floor_and_a_data_sized_rate() -> None:
    config = TrainConfig(train_file="x.jsonl", method="lora")
    assert config.resolved_steps(16) == config.min_steps  # 1 step an epoch: the floor decides
    assert config.resolved_steps(10_000) == 5 * 313  # the epochs decide
    assert TrainConfig(train_file="x.jsonl", max_steps=7).resolved_steps(10_000) == 7
    assert config.resolved_learning_rate(4) == pytest.approx(1e-3 / 10)  # the floor
    assert config.resolved_learning_rate(16) == pytest.approx(1e-3 / 8)
    assert config.resolved_learning_rate(256) == pytest.approx(1e-3 / 2)
    assert config.resolved_learning_rate(4096) == pytest.approx(1e-3)
    assert TrainConfig(train_file="x", learning_rate=3e-5).resolved_learning_rate(16) == 3e-5
    with pytest.raises(ConfigError, match="zero-shot"):
        TrainConfig(train_file="x.jsonl", shots=0, head="linear")
    with pytest.raises(ConfigError, match="pair_loss=1.0 needs task=classify and head="):
        TrainConfig(train_file="x.jsonl", pair_loss=1.0, head="linear")


def test_torch_and_numpy_heads_agree_and_extend(tiny_model, tmp_path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    encoder = AutoModel.from_pretrained(tiny_model)
    texts = ["rain and storm today", "the striker scored a goal", "bank shares fell", "a"]
    head = initial_head(
        encoder,
        tokenizer,
        ["a", "b"],
        ["This is about a.", "This is about b."],
        32,
        (texts, [0, 1, 0, 1]),
    )
    assert np.allclose(np.linalg.norm(head.rows, axis=-1), 1.0, atol=1e-6)
    module = description_classifier(encoder, head).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        torch_scores = module(**batch)["logits"].numpy()
    numpy_scores = head.logits(embed(encoder, tokenizer, texts, 32))
    assert np.allclose(torch_scores, numpy_scores, atol=1e-4)

    head.bias[:] = [0.5, -1.5]
    head.save(tmp_path / "head.npz")
    loaded = LabelHead.load(tmp_path / "head.npz")
    assert loaded.labels == ["a", "b"] and np.array_equal(loaded.rows, head.rows)
    bigger = extend_head(loaded, encoder, tokenizer, {"c": "This is about c."}, 32)
    assert bigger.labels == ["a", "b", "c"] and bigger.rows.shape == (3, head.rows.shape[1])
    assert bigger.bias[2] == pytest.approx(-0.5)  # the mean of the trained biases
    assert np.allclose(bigger.rows[:2], head.rows)


def test_pair_loss_is_setfits_objective_on_the_batchs_pairs() -> None:
    import torch

    unit = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)
    # texts 0 and 1 share a label and coincide; 2 is orthogonal to both: nothing to learn
    assert pair_loss(unit, torch.tensor([0, 0, 1])).item() == pytest.approx(0.0)
    # relabelled: (0, 1) coincide but differ (gap 1), (0, 2) share a label at cosine 0 (gap 1),
    # (1, 2) differ and are orthogonal (gap 0)
    assert pair_loss(unit, torch.tensor([0, 1, 0])).item() == pytest.approx(2 / 3)
    assert pair_loss(unit[:1], torch.tensor([0])).item() == 0.0  # a batch of one has no pair


@pytest.mark.slow
def test_sixteen_examples_get_the_floor_of_steps(tmp_path, tiny_model) -> None:
    from rec_edge.train import train

    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", make_examples(8, seed=5)),
        "test": write_jsonl(tmp_path / "test.jsonl", make_examples(4, seed=6)),
    }
    result = train(
        tiny_train_config(
            tiny_model, files, tmp_path / "runs", min_steps=30, epochs=1, batch_size=32
        )
    )
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["steps"] == 30  # not the 1 step that one epoch of 21 examples gives
    assert run["head"]["kind"] == "descriptions" and (result.run_dir / "head.npz").is_file()
    logged = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert sum("eval_accuracy" in row for row in logged) == 5  # 5 evaluations in a step schedule
