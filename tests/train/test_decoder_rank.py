"""TALLRec with a language model: LoRA on "Will the user enjoy X? Answer Yes or No." (the tiny
random Llama of conftest, SmolLM2's tokenizer, synthetic interactions), a rank decoder bundle,
and the torch-free Generator's P(Yes) / (P(Yes) + P(No)) with the user's history run once:
PyTorch's numbers, independent of the other candidates, through `score` and `serve`; a run's
collaborative tables and stack over that score, carried into the bundle exported from the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rec_edge.bundle import SCHEMA_VERSION
from rec_edge.cli import main
from rec_edge.config import DecoderExportConfig, ScoreConfig, TrainConfig
from rec_edge.data.prompts import rank_candidate, rank_history
from rec_edge.recommend.tables import add_tables, load_tables, rank_values
from rec_edge.runtime import GenerativeRanker, Generator, load
from rec_edge.scoring import score
from tests.helpers import live_server, write_interactions

HISTORY = {"liked": ["Movie 1", "Movie 7"], "disliked": ["Movie 3"]}
CANDIDATES = ["Movie 2", "Movie 11", "Movie 5", "A much longer title: the Movie 9 (1994)"]


@pytest.fixture(scope="module")
def rank_run(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rec_edge.train import train

    folder = tmp_path_factory.mktemp("decoder-rank")
    config = TrainConfig(
        train_file=str(write_interactions(folder, users=10, items=30, per_user=20, seed=5)),
        items_file=str(folder / "items.jsonl"),
        task="rank",
        model=str(tiny_llama),
        runs_dir=str(folder / "runs"),
        name="tallrec",
        history=4,
        shots=24,
        max_steps=12,
        batch_size=8,
        learning_rate=1e-2,
        precision="fp32",
        validation_limit=12,
        rank_test=False,
    )
    return train(config).run_dir


@pytest.fixture(scope="module")
def rank_bundle_fp32(rank_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rec_edge.export.decoder import export_decoder

    out = tmp_path_factory.mktemp("decoder-rank-bundle") / "tallrec"
    run = json.loads((rank_run / "run.json").read_text())
    config = DecoderExportConfig(
        model=str(rank_run / "model"),
        out=str(out),
        task="rank",
        instruction=run["instruction"],
        weights="fp32",
    )
    export_decoder(config)
    return out


def test_the_run_records_tallrec_and_its_validation_auc(rank_run: Path) -> None:
    run = json.loads((rank_run / "run.json").read_text())
    assert run["family"] == "decoder" and run["task"] == "rank"
    assert run["rank"]["answers"] == ["Yes", "No"] and "{candidate}" in run["rank"]["candidate"]
    assert run["examples"] == 24 and run["steps"] == 12
    assert run["loss"]["last"] < run["loss"]["first"]
    validation = run["metrics"]["validation"]
    assert validation["n"] == 12 and 0.0 <= validation["auc"] <= 1.0
    # the collaborative stage fitted its tables and stack over the decoder's log-odds of "Yes"
    stage = run["collaborative"]
    assert stage["encoder"] == "torch" and stage["rows"] == 24
    assert stage["stack"]["validation_rows"] == 12 and stage["stack"]["like"]["chosen"]
    assert (rank_run / "collab.npz").is_file()


def test_scores_are_pytorchs_and_do_not_depend_on_the_other_candidates(
    rank_run: Path, rank_bundle_fp32: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    generator = Generator.load(rank_bundle_fp32)
    logits = generator.rank_logits(HISTORY, CANDIDATES)
    model = AutoModelForCausalLM.from_pretrained(rank_run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(rank_run / "model")
    spec = generator.spec
    head = spec.prompt_prefix + rank_history(
        HISTORY["liked"], HISTORY["disliked"], spec.instruction
    )
    yes, no = (tokenizer.encode(w, add_special_tokens=False)[0] for w in ("Yes", "No"))
    for candidate, mine in zip(CANDIDATES, logits, strict=True):
        tail = rank_candidate(candidate) + spec.prompt_suffix
        ids = tokenizer.encode(head, add_special_tokens=False)
        ids += tokenizer.encode(tail, add_special_tokens=False)
        with torch.no_grad():
            last = model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert mine == pytest.approx(float(last[yes] - last[no]), abs=1e-3)
    alone = [generator.rank_logits(HISTORY, [c])[0] for c in CANDIDATES]
    assert np.allclose(alone, logits, atol=1e-5)  # padding behind each candidate only
    head_ids = generator.encode(generator.rank_prompt(HISTORY["liked"], HISTORY["disliked"])[0])
    assert generator._frame_cache(head_ids)[0] > 10  # the chat format and the instruction
    whole = Generator.load(rank_bundle_fp32)
    whole.reuse_prefix = False  # the history's prompt run whole, its frame too: the same scores
    assert np.allclose(whole.rank_logits(HISTORY, CANDIDATES), logits, atol=1e-4)
    probabilities = generator.score(HISTORY, CANDIDATES)
    assert np.allclose(probabilities, 1 / (1 + np.exp(-logits)), atol=1e-6)
    ranked = generator.rank(HISTORY, CANDIDATES, k=2)
    order = np.argsort(-logits, kind="stable")[:2]
    assert [r.item for r in ranked] == [CANDIDATES[i] for i in order]
    assert ranked[0].score == pytest.approx(probabilities[order[0]], abs=1e-6)


def test_cli_export_gates_on_the_runs_validation_auc(rank_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["export", str(rank_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "rec_edge.json").read_text())
    assert manifest["task"] == "rank" and manifest["family"] == "decoder"
    assert manifest["decoder"]["rank_answers"] == ["Yes", "No"]
    gate = manifest["metrics"]["gate"]
    assert all(row["rows"] == 12 and "auc" in row for row in gate) and gate[-1]["kept"]
    assert "AUC on 12 validation rows" in manifest["recipe"]["choice_rule"]
    # the run's tables and stack ride in the bundle: P(enjoys) is their stack over the log-odds
    assert manifest["items_file"] == "items.npz" and manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["source"]["collaborative"]["encoder"] == "torch"
    generator = load(out)
    assert isinstance(generator, GenerativeRanker) and generator.collaborative is not None
    assert generator.catalog == sorted(generator.collaborative.index)
    assert "Movie 2" in generator.catalog
    items = ["Movie 2", "Movie 11", "No such film (2031)"]  # the last one off the catalog
    text = generator.rank_logits(HISTORY, items)
    like, exposure = add_tables(
        load_tables(out / "items.npz"), HISTORY["liked"], HISTORY["disliked"], items, text
    )
    assert exposure is not None and not np.allclose(like, text)
    assert np.allclose(generator.score(HISTORY, items), 1 / (1 + np.exp(-like)), atol=1e-6)
    order = np.argsort(-rank_values(like, exposure), kind="stable")
    assert [r.item for r in generator.rank(HISTORY, items)] == [items[i] for i in order]
    # a stack that gives the text no weight needs no model run for catalog titles
    stack = generator.collaborative.stack
    assert stack is not None
    stack.like_weights[0] = 0.0  # "text", the first like part
    known = items[:2]
    expected = add_tables(
        generator.collaborative, HISTORY["liked"], HISTORY["disliked"], known, text[:2]
    )[0]

    def no_run(*_: object) -> None:
        raise AssertionError("the model ran")

    generator.rank_logits = no_run  # type: ignore[method-assign]
    assert np.allclose(generator.score(HISTORY, known), 1 / (1 + np.exp(-expected)), atol=1e-6)
    with pytest.raises(AssertionError, match="the model ran"):  # a title off the catalog
        generator.score(HISTORY, items)


def test_score_and_serve_rank_with_a_decoder_bundle(rank_bundle_fp32: Path, tmp_path: Path) -> None:
    generator = Generator.load(rank_bundle_fp32)
    users = [
        {"user": "a", **HISTORY},
        {"user": "b", "liked": ["Movie 4"], "disliked": []},
    ]
    source = tmp_path / "users.jsonl"
    source.write_text("".join(json.dumps(u) + "\n" for u in users))
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("\n".join(CANDIDATES) + "\n")
    config = ScoreConfig(
        str(rank_bundle_fp32),
        str(source),
        str(tmp_path / "out"),
        candidates=str(candidates),
        k=3,
        progress=False,
    )
    score(config)
    rows = [json.loads(line) for p in (tmp_path / "out").glob("part-*.jsonl") for line in p.open()]
    for user in users:
        history = {"liked": user["liked"], "disliked": user["disliked"]}
        expected = generator.rank(history, [c for c in CANDIDATES if c not in user["liked"]], 3)
        mine = sorted((r for r in rows if r["user"] == user["user"]), key=lambda r: r["rank"])
        assert [r["item"] for r in mine] == [r.item for r in expected]
        assert [r["score"] for r in mine] == pytest.approx([r.score for r in expected], abs=1e-5)
    args = [str(rank_bundle_fp32)]
    with live_server(args, tmp_path / "log") as live, live.client() as client:
        body = {**HISTORY, "candidates": CANDIDATES, "k": 2}
        response = client.post(f"/v1/models/{rank_bundle_fp32.name}/rank", json=body)
    assert response.status_code == 200, response.text
    expected = generator.rank(HISTORY, CANDIDATES, 2)
    answer = response.json()["items"]
    assert [a["item"] for a in answer] == [r.item for r in expected]
    assert [a["score"] for a in answer] == pytest.approx([r.score for r in expected], abs=1e-5)
