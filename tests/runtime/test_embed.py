"""Sentence vectors of a classify bundle (the pooled, unit-length vector its label head reads):
`Predictor.embed`, `rec-edge embed`, `rec-edge score --embed` and `POST /v1/embeddings` (the
official `openai` client against a real server) give the same float32 vectors, whatever the
batch, and they are the head's input: its logits follow from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openai
import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.config import ScoreConfig
from rec_edge.errors import BundleError, ConfigError
from rec_edge.modeling.heads import HEAD_FILE, LabelHead
from rec_edge.runtime import Predictor
from rec_edge.scoring import score
from tests.helpers import live_server, make_examples, write_jsonl

TEXTS = [r["text"] for r in make_examples(7, seed=11)]


@pytest.fixture(scope="module")
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor.load(tiny_bundle)


def test_vectors_are_unit_the_heads_input_and_batch_invariant(
    predictor: Predictor, tiny_run
) -> None:  # type: ignore[no-untyped-def]
    vectors = predictor.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 32)
    assert predictor.embedding_size == 32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    head = LabelHead.load(Path(tiny_run.run_dir) / HEAD_FILE)
    np.testing.assert_allclose(head.logits(vectors), predictor.logits(TEXTS), atol=1e-4)
    alone = np.stack([predictor.embed([t])[0] for t in TEXTS])
    assert np.array_equal(alone, vectors)  # bit for bit, as the labels are
    for batch_size in (1, 4):
        assert np.array_equal(predictor.embed(TEXTS, batch_size=batch_size), vectors)
    logits, both = predictor.logits_and_embeddings(TEXTS, batch_size=3)
    assert np.array_equal(both, vectors) and np.array_equal(logits, predictor.logits(TEXTS))
    assert predictor.embed([]).shape == (0, 32)


def test_a_bundle_without_vectors_says_so(rank_bundle: Path) -> None:
    ranker = Predictor.load(rank_bundle)
    assert ranker.embedding_size is None
    with pytest.raises(BundleError, match="no 'embedding' output"):
        ranker.embed(["x"])


def test_cli_embed_and_score_embed_write_the_same_vectors(
    predictor: Predictor, tiny_bundle: Path, rank_bundle: Path, tmp_path: Path
) -> None:
    expected = predictor.embed(TEXTS)
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    result = CliRunner().invoke(
        main, ["embed", str(tiny_bundle), "--input", str(source), "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "o").read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    assert np.array_equal(np.array([r["embedding"] for r in rows], np.float32), expected)
    out = tmp_path / "scored"
    score(ScoreConfig(str(tiny_bundle), str(source), str(out), embed=True, progress=False))
    scored = [json.loads(x) for x in (out / "part-00000.jsonl").read_text().splitlines()]
    assert np.array_equal(np.array([r["embedding"] for r in scored], np.float32), expected)
    assert [r["label"] for r in scored] == [p.label for p in predictor.predict(TEXTS)]
    with pytest.raises(ConfigError, match="no sentence vectors"):
        score(ScoreConfig(str(rank_bundle), str(source), str(tmp_path / "r"), embed=True))


def test_openai_embeddings_endpoint(
    predictor: Predictor, tiny_bundle: Path, rank_bundle: Path, tmp_path: Path
) -> None:
    expected = predictor.embed(TEXTS)
    args = ["--bundle", f"topics={tiny_bundle}", "--bundle", f"movies={rank_bundle}"]
    with live_server(args, tmp_path / "log") as live:
        client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)
        answer = client.embeddings.create(model="topics", input=TEXTS)  # base64 on the wire
        got = np.array([d.embedding for d in answer.data], np.float32)
        assert [d.index for d in answer.data] == list(range(len(TEXTS)))
        assert np.array_equal(got, expected) and answer.model == "topics"
        assert answer.usage.prompt_tokens > len(TEXTS)
        floats = client.embeddings.create(
            model="topics", input=TEXTS[0], encoding_format="float", dimensions=32
        )
        assert np.array_equal(np.array(floats.data[0].embedding, np.float32), expected[0])
        with pytest.raises(openai.NotFoundError, match="no model 'nope'"):
            client.embeddings.create(model="nope", input="x")
        with pytest.raises(openai.BadRequestError, match="gives no sentence vectors"):
            client.embeddings.create(model="movies", input="x")
        with pytest.raises(openai.UnprocessableEntityError, match="dimensions"):
            client.embeddings.create(model="topics", input="x", dimensions=8)
        with pytest.raises(openai.UnprocessableEntityError, match="input"):
            client.embeddings.create(model="topics", input=[[1, 2, 3]])  # token ids
