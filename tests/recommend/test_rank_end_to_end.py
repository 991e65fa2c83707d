"""The rank task through train, export and the runtime, on synthetic interactions (tiny model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.errors import ConfigError, DataError
from rec_edge.recommend.tables import CollaborativeTables, history_similarity
from rec_edge.runtime import Classifier, Predictor, Ranker
from rec_edge.runtime.ranker import pair_scores

pytestmark = pytest.mark.slow


def stacked(
    tables: CollaborativeTables,
    liked: list[str],
    disliked: list[str],
    items: list[str],
    text: np.ndarray,
    liked_rows: np.ndarray,
    item_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The like and exposure logits by hand from the stack's arrays (runtime.collab's formulas),
    given the output rows of the liked titles and of the items."""
    stack = tables.stack
    assert stack is not None
    user = tables.user(liked, disliked)
    rows = [tables.index[t] for t in items]
    prior = stack.liked.sum() / stack.rated.sum()
    rate = (stack.liked[rows] + 5 * prior) / (stack.rated[rows] + 5)
    share = (len(liked) + 1) / (len(liked) + len(disliked) + 2)
    profile = sum(r[:-1] / np.linalg.norm(r[:-1]) for r in liked_rows) / len(liked_rows)
    similarity = [
        r[:-1] @ profile / np.linalg.norm(r[:-1]) / np.linalg.norm(profile) for r in item_rows
    ]
    # schema 1.5: the user's lenience and the co-liked history (history titles of the catalog)
    history = [(tables.index[t], y) for ts, y in ((liked, 1.0), (disliked, 0.0)) for t in ts]
    residual = [y - (stack.liked[h] + 5 * prior) / (stack.rated[h] + 5) for h, y in history]
    lenience = sum(residual) / (len(residual) + 2)
    assert stack.colike is not None
    cosine = np.array([[stack.colike[i] @ stack.colike[h] for h, _ in history] for i in rows])
    coliked = cosine @ np.array(residual) / (np.abs(cosine).sum(1) + 1)
    a = stack.like_weights
    like = (
        a[0] * text
        + a[1] * tables.like(user, items)
        + a[2] * np.log(share / (1 - share))
        + a[3] * np.log(rate / (1 - rate))
        + a[4] * np.array(similarity)
        + a[5] * lenience
        + a[6] * coliked
        + a[7]
    )
    e = stack.exposure_weights
    exposure = e[0] * tables.exposure(user, items) + e[1] * np.log1p(stack.rated[rows]) + e[2]
    return like, exposure


def test_rank_scores_every_candidate_in_order(rank_bundle) -> None:
    predictor = Predictor.load(rank_bundle, item_cache=0, catalog=False)
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
    text = user[:-1] @ item[:-1] + user[-1] + item[-1]
    # stacked with the run's collaborative tables and counts (train.collab, train.stack)
    tables = predictor.collaborative
    assert tables is not None
    liked_rows = predictor.logits(history["liked"])
    like, exposure = (
        v[0]
        for v in stacked(
            tables, *history.values(), [ranked[0].item], np.array([text]), liked_rows, item[None]
        )
    )
    assert np.isclose(1 / (1 + np.exp(-like)), ranked[0].enjoy, atol=1e-5)
    assert np.isclose(ranked[0].enjoy / (1 + np.exp(-exposure)), ranked[0].score, atol=1e-5)
    assert [r.item for r in predictor.rank(history, candidates, k=5)] == [
        r.item for r in ranked[:5]
    ]
    # a candidate's score does not depend on the others it is ranked with
    alone = predictor.score(history, [ranked[3].item])[0]
    assert np.isclose(alone, ranked[3].enjoy, atol=1e-5)


def test_item_cache_gives_the_same_scores_and_stays_bounded(rank_bundle) -> None:
    history = {"liked": ["Movie 4"], "disliked": []}
    candidates = [f"Movie {i}" for i in range(20)]
    plain = Predictor.load(rank_bundle, item_cache=0, catalog=False)
    cached = Predictor.load(rank_bundle, item_cache=8, catalog=False)
    reference = plain.score(history, candidates)
    assert not plain._items
    first = cached.score(history, candidates)
    assert len(cached._items) == 8 and list(cached._items) == candidates[-8:]  # newest kept
    again = cached.score(history, candidates[::-1])[::-1]  # 8 from the cache, 12 encoded
    np.testing.assert_allclose(first, reference, atol=1e-6)
    np.testing.assert_allclose(again, reference, atol=1e-6)


def test_item_index_of_the_catalog_is_in_the_bundle_and_used(rank_bundle) -> None:
    from rec_edge.bundle import load_bundle

    manifest = load_bundle(rank_bundle).manifest
    assert manifest.items_file == "items.npz" and "items.npz" in manifest.files  # sha-checked
    with np.load(rank_bundle / "items.npz", allow_pickle=False) as index:
        assert sorted(index["titles"].tolist()) == sorted(f"Movie {i}" for i in range(40))
        assert index["vectors"].shape[0] == 40
    history = {"liked": ["Movie 4"], "disliked": ["Movie 5"]}
    known = [f"Movie {i}" for i in range(20)]
    indexed = Predictor.load(rank_bundle)
    encoded = Predictor.load(rank_bundle, item_cache=0, catalog=False)
    tables = indexed.collaborative  # fitted after training, copied into the item index
    assert tables is not None and set(tables.index) == {f"Movie {i}" for i in range(40)}
    like, exposure = indexed._logits(history, known)
    np.testing.assert_allclose(like, encoded._logits(history, known)[0], atol=1e-5)
    assert exposure is not None
    user_row = indexed.logits([indexed._user_text(history["liked"], history["disliked"])])[0]
    item_rows = encoded.logits(known)
    text = pair_scores(user_row, item_rows)
    liked_rows = encoded.logits(history["liked"])
    by_stack = stacked(tables, *history.values(), known, text, liked_rows, item_rows)
    np.testing.assert_allclose(like, by_stack[0], atol=1e-4)
    np.testing.assert_allclose(exposure, by_stack[1], atol=1e-5)
    assert not np.allclose(like, text)  # the tables moved the scores
    assert not indexed._items  # every candidate came from the index: nothing encoded
    # score() is P(enjoys | watches); rank() orders by P(watches) x P(enjoys | watches)
    np.testing.assert_allclose(indexed.score(history, known), 1 / (1 + np.exp(-like)), atol=1e-6)
    ranked = indexed.rank(history, known)
    by_hand = {
        t: 1 / (1 + np.exp(-a)) / (1 + np.exp(-b))
        for t, a, b in zip(known, like, exposure, strict=True)
    }
    assert [r.item for r in ranked] == sorted(known, key=lambda t: -by_hand[t])
    assert all(np.isclose(r.score, by_hand[r.item], rtol=1e-5) for r in ranked)
    enjoy = dict(zip(known, indexed.score(history, known).tolist(), strict=True))
    assert all(np.isclose(r.enjoy, enjoy[r.item], atol=1e-6) for r in ranked)
    record = load_bundle(rank_bundle).manifest.source["collaborative"]
    assert record["rows"] > 0 and record["best_epoch"] >= 0 and record["catalog"] == 40
    chosen = record["stack"]["like"]["chosen"]  # the parts the stack kept, nonzero weights
    weights = record["stack"]["like"]["weights"]
    assert chosen and all((weights[f] != 0) == (f in chosen) for f in weights if f != "intercept")
    indexed.score(history, ["A title not in the catalog"])
    assert list(indexed._items) == ["A title not in the catalog"]
    # titles outside the catalog (schema 1.4): an exposure from their similarity and words
    new = ["Movie 4: the return", "Something else entirely"]
    _, new_exposure = indexed._logits(history, new)
    stack = tables.stack
    assert stack is not None and stack.words is not None and new_exposure is not None
    words = stack.words.similarity(history["liked"], new)
    assert words[0] > 0 and words[1] == 0  # "Movie 4" shared with the liked title
    g = stack.new_exposure_weights
    assert g is not None and "new_item_exposure" in record["stack"]
    similarity = history_similarity(liked_rows, encoded.logits(new))
    np.testing.assert_allclose(new_exposure, g[0] * similarity + g[1] * words + g[2], atol=1e-5)


def test_rank_errors(rank_bundle, tiny_bundle) -> None:
    predictor = Predictor.load(rank_bundle)
    with pytest.raises(DataError, match="unknown keys \\['seen'\\]"):
        predictor.rank({"seen": []}, ["a"])
    with pytest.raises(DataError, match="texts\\[0\\] is None"):
        predictor.rank({"liked": ["x"]}, [None])  # type: ignore[list-item]
    # tasks as types: each bundle opens as its task's Predictor, and each class only its own
    assert isinstance(predictor, Ranker) and not hasattr(predictor, "predict")
    assert isinstance(Predictor.load(tiny_bundle), Classifier)
    with pytest.raises(ConfigError, match="is a 'classify' bundle: load it with Classifier.load"):
        Ranker.load(tiny_bundle)
    with pytest.raises(ConfigError, match="is a 'rank' bundle: load it with Ranker.load"):
        Classifier.load(rank_bundle)


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


def _requests(path, n: int = 6) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {
            "liked": [f"Movie {i}", f"Movie {i + 1}"],
            "disliked": [f"Movie {i + 2}"],
            "candidates": [f"Movie {j}" for j in range(10 + i, 30 + i)],
            "target": f"Movie {10 + i}",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_bench_ranks_requests_with_every_engine(rank_bundle, tmp_path) -> None:
    from rec_edge.bench.runner import run_benchmark
    from rec_edge.config import BenchConfig

    _requests(tmp_path / "requests.jsonl")
    config = BenchConfig(
        bundles=[str(rank_bundle)],
        engines=["onnx", "ort-raw", "torch", "optimum"],
        batch_sizes=[1],
        text_file=str(tmp_path / "requests.jsonl"),
        label_field="target",
        warmup=1,
        iterations=4,
        cold_start_runs=1,
        peak=False,
    )
    data = run_benchmark(config).data
    rows = data["results"]
    assert {r["engine"] for r in rows} == {
        "onnx:bundle",
        "ort-raw:bundle",
        "torch:bundle-fp32",
        "optimum:bundle",
    }
    assert all(r["workload"] == "requests" and r["macs_per_item"] > 0 for r in rows)
    # every engine picks the same top item of each request as Predictor.rank (fp32 bundle)
    predictor = Predictor.load(rank_bundle)
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    expected = [
        predictor.rank(
            {"liked": json.loads(x)["liked"], "disliked": json.loads(x)["disliked"]},
            json.loads(x)["candidates"],
        )[0].item
        for x in lines
    ]
    hr1 = np.mean([e == json.loads(x)["target"] for e, x in zip(expected, lines, strict=True)])
    for name, info in data["engines"].items():
        assert info["accuracy"] == pytest.approx(hr1), name
    assert "error" not in data["cold_start"]["onnx:bundle"]


def test_rank_requests_are_checked_field_by_field(rank_bundle, tmp_path) -> None:
    from rec_edge.runtime.requests import parse_rank_request

    with pytest.raises(DataError, match="r.jsonl:3: 'candidates' must be a list of strings"):
        parse_rank_request('{"candidates": "Movie 1"}', "r.jsonl:3")
    with pytest.raises(DataError, match="'seen' unknown field \\(known: liked"):
        parse_rank_request('{"candidates": [], "seen": []}')
    with pytest.raises(DataError, match="'k' must be a positive integer"):
        parse_rank_request('{"candidates": ["a"], "k": 0}')
    with pytest.raises(DataError, match="request: not valid JSON"):
        parse_rank_request("{liked")
    (tmp_path / "in.jsonl").write_text(
        '{"liked": ["Movie 1"], "candidates": ["Movie 2", "Movie 3"], "k": 1}\n\n{"candidates": 3}\n'
    )
    result = CliRunner().invoke(
        main, ["predict", str(rank_bundle), "--input", str(tmp_path / "in.jsonl")]
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'in.jsonl'}:3: 'candidates' must be a list of strings" in result.output


def test_collaborative_refit_reuses_the_encoder_scores(rank_bundle, tmp_path, monkeypatch) -> None:
    import shutil
    from pathlib import Path

    from rec_edge.bundle import load_bundle
    from rec_edge.recommend import collab

    run_dir = tmp_path / "run"
    shutil.copytree(Path(load_bundle(rank_bundle).manifest.source["run"]), run_dir)
    with np.load(run_dir / collab.COLLAB_FILE) as fitted:
        before = {k: fitted[k] for k in fitted.files}

    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder ran again")

    monkeypatch.setattr("rec_edge.convert.onnx_export.torch_logits", no_encoder)
    collab.fit_collaborative(run_dir)  # the same texts and weights: the kept scores
    with np.load(run_dir / collab.COLLAB_FILE) as again:
        for key, value in before.items():
            np.testing.assert_array_equal(again[key], value)  # seeded: the same tables
    record = collab.fit_collaborative(run_dir, collab.CollabConfig(dim=4))
    with np.load(run_dir / collab.COLLAB_FILE) as other:
        assert other["like_vectors"].shape[1] == 4
    assert json.loads((run_dir / "run.json").read_text())["collaborative"] == record


def test_rank_export_is_batch_invariant(rank_bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The gate measures rank bundles too (P(yes) of its validation pairs at every batching) and
    keeps a calibrated int8 graph: an item's vector does not depend on its batch-mates."""
    from rec_edge.bundle import load_bundle
    from rec_edge.config import ExportConfig
    from rec_edge.export import export

    run_dir = load_bundle(rank_bundle).manifest.source["run"]
    result = export(
        ExportConfig(run_dir=run_dir, out=str(tmp_path / "int8"), max_accuracy_drop=100.0),
        log=lambda _: None,
    )
    assert result.recipe["kind"] == "calibrated" and result.recipe["batch_invariant"] is True
    assert all(row["batch_invariant"] for row in result.gate)
    predictor = Predictor.load(result.bundle_dir, catalog=False, item_cache=0)
    titles = [f"Movie {i}" for i in range(40)] + ["A title nobody rated"]
    alone = np.concatenate([predictor.logits([t], batch_size=1) for t in titles])
    np.testing.assert_allclose(predictor.logits(titles, batch_size=32), alone, atol=1e-5)
    history = {"liked": ["Movie 1", "Movie 2"], "disliked": ["Movie 3"]}
    np.testing.assert_allclose(
        predictor.score(history, titles),
        np.concatenate([predictor.score(history, [t]) for t in titles]),
        atol=1e-6,
    )


def test_item_template_makes_the_item_texts_and_titles_still_name_them(
    tmp_path, tiny_model
) -> None:
    """``--item-template``: the item tower reads "title (year), genres"; requests may name catalog
    items by title or by that text, with the same scores, and get back the names they sent."""
    from rec_edge.config import ExportConfig
    from rec_edge.export import export
    from rec_edge.train import train
    from tests.helpers import synthetic, tiny_train_config

    rows = synthetic(users=12, items=40, per_user=20, seed=4)
    (tmp_path / "inter.jsonl").write_text(
        "".join(
            json.dumps({"user": u, "item": i, "rating": r, "timestamp": t}) + "\n"
            for u, i, r, t in rows
        )
    )
    genres = ["Drama", "Comedy", "Horror"]
    (tmp_path / "items.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "item": f"i{i}",
                    "title": f"Movie {i}",
                    "year": 1990 + i,
                    "genres": [genres[i % 3]],
                }
            )
            + "\n"
            for i in range(40)
        )
    )
    config = tiny_train_config(
        tiny_model,
        {"train": tmp_path / "inter.jsonl", "test": tmp_path / "inter.jsonl"},
        tmp_path / "runs",
        name="templated",
        task="rank",
        items_file=str(tmp_path / "items.jsonl"),
        item_template="{title} ({year}), {genres}",
        test_file=None,
        max_length=96,
        epochs=1,
    )
    run = train(config)
    bundle = export(
        ExportConfig(run_dir=str(run.run_dir), out=str(tmp_path / "bundle"), quantize="fp32"),
        log=lambda _: None,
    ).bundle_dir
    predictor = Predictor.load(bundle)
    assert "Movie 4 (1994), Comedy" in predictor.catalog and "Movie 4" not in predictor.catalog
    by_title = predictor.rank(
        {"liked": ["Movie 1"], "disliked": ["Movie 2"]}, ["Movie 4", "Movie 5"]
    )
    by_text = predictor.rank(
        {"liked": ["Movie 1 (1991), Comedy"], "disliked": ["Movie 2 (1992), Horror"]},
        ["Movie 4 (1994), Comedy", "Movie 5 (1995), Horror"],
    )
    assert sorted(r.item for r in by_title) == ["Movie 4", "Movie 5"]  # the names sent
    assert [r.score for r in by_title] == [r.score for r in by_text]
    assert not predictor._items  # both came from the item index: nothing encoded
    predictor.score({"liked": ["Movie 1"]}, ["Movie 99 (2001), Drama"])  # off the catalog: encoded
    assert list(predictor._items) == ["Movie 99 (2001), Drama"]
