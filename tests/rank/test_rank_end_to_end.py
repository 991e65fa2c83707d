"""The rank task through train, export and the runtime, on synthetic interactions (tiny model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.config import ExportConfig
from rec_edge.errors import ConfigError, DataError
from rec_edge.export import export
from rec_edge.runtime import Predictor
from rec_edge.train import train
from tests.conftest import tiny_train_config
from tests.data.test_recommend import synthetic

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rank_bundle(tmp_path_factory, tiny_model):  # type: ignore[no-untyped-def]
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


def test_rank_scores_every_candidate_in_order(rank_bundle) -> None:
    predictor = Predictor.load(rank_bundle, item_cache=0)
    history = {"liked": ["Movie 1", "Movie 2"], "disliked": ["Movie 3"]}
    candidates = [f"Movie {i}" for i in range(10, 30)]
    ranked = predictor.rank(history, candidates)
    assert sorted(r.item for r in ranked) == sorted(candidates)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    # two towers: the user's text (the bundle's inference template) and the item's, each
    # encoded on its own; P(yes) = sigmoid(e_user . e_item + b_user + b_item)
    user_text = predictor.templates.preference_renderer()(history["liked"], history["disliked"])
    assert "Movie 1; Movie 2" in user_text and "liked 2" in user_text
    user = predictor.logits([user_text])[0]
    item = predictor.logits([ranked[0].item])[0]
    by_hand = 1 / (1 + np.exp(-(user[:-1] @ item[:-1] + user[-1] + item[-1])))
    assert np.isclose(by_hand, ranked[0].score, atol=1e-5)
    assert [r.item for r in predictor.rank(history, candidates, k=5)] == [
        r.item for r in ranked[:5]
    ]
    # a candidate's score does not depend on the others it is ranked with
    alone = predictor.score(history, [ranked[3].item])[0]
    assert np.isclose(alone, ranked[3].score, atol=1e-5)


def test_item_cache_gives_the_same_scores_and_stays_bounded(rank_bundle) -> None:
    history = {"liked": ["Movie 4"], "disliked": []}
    candidates = [f"Movie {i}" for i in range(20)]
    plain = Predictor.load(rank_bundle, item_cache=0)
    cached = Predictor.load(rank_bundle, item_cache=8)
    reference = plain.score(history, candidates)
    assert not plain._items
    first = cached.score(history, candidates)
    assert len(cached._items) == 8 and list(cached._items) == candidates[-8:]  # newest kept
    again = cached.score(history, candidates[::-1])[::-1]  # 8 from the cache, 12 encoded
    np.testing.assert_allclose(first, reference, atol=1e-6)
    np.testing.assert_allclose(again, reference, atol=1e-6)


def test_rank_errors(rank_bundle, tiny_bundle) -> None:
    predictor = Predictor.load(rank_bundle)
    with pytest.raises(DataError, match="unknown keys \\['seen'\\]"):
        predictor.rank({"seen": []}, ["a"])
    with pytest.raises(DataError, match="texts\\[0\\] is None"):
        predictor.rank({"liked": ["x"]}, [None])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="'classify' bundle; rank\\(\\) needs a 'rank' one"):
        Predictor.load(tiny_bundle).rank({}, ["a"])


def test_predict_cli_takes_json_requests(rank_bundle) -> None:
    request = json.dumps(
        {"liked": ["Movie 1"], "candidates": ["Movie 5", "Movie 6", "Movie 7"], "k": 2}
    )
    result = CliRunner().invoke(main, ["predict", str(rank_bundle), request])
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.stdout.splitlines()[0])["ranked"]
    assert len(ranked) == 2 and {r["item"] for r in ranked} <= {"Movie 5", "Movie 6", "Movie 7"}
    result = CliRunner().invoke(main, ["predict", str(rank_bundle), '{"liked": []}'])
    assert (
        result.exit_code == 1
        and "request 1: expected a JSON object with 'candidates'" in result.output
    )
