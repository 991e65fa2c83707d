"""Interactions readers, the pointwise and ranking protocols, and their metrics, on synthetic data."""

from __future__ import annotations

import json
import math
import random

import pytest

from rec_edge.errors import DataError
from rec_edge.metrics import ranking_metrics, roc_auc
from rec_edge.recommend.interactions import Interaction, InteractionData, read_interactions
from rec_edge.recommend.protocols import pointwise_splits, ranking_cases
from tests.helpers import synthetic


@pytest.fixture
def folders(tmp_path):
    rows = synthetic()
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "u.data").write_text("".join(f"{u[1:]}\t{i[1:]}\t{r}\t{t}\n" for u, i, r, t in rows))
    (ml / "u.item").write_bytes(
        "".join(f"{i}|Movie {i} (199{i % 10})|x\n" for i in range(40)).encode("latin-1")
    )
    atomic = tmp_path / "atomic"
    atomic.mkdir()
    (atomic / "x.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        + "".join(f"{u[1:]}\t{i[1:]}\t{r}\t{t}\n" for u, i, r, t in rows)
    )
    (atomic / "x.item").write_text(
        "item_id:token\tmovie_title:token_seq\n" + "".join(f"{i}\tMovie {i}\n" for i in range(40))
    )
    jsonl = tmp_path / "inter.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"user": u, "item": i, "rating": r, "timestamp": t}) + "\n"
            for u, i, r, t in rows
        )
    )
    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(json.dumps({"item": f"i{i}", "title": f"Movie {i}"}) + "\n" for i in range(40))
    )
    return {"ml": ml, "atomic": atomic, "jsonl": jsonl, "items": items}


def test_three_layouts_read_the_same(folders) -> None:
    a = read_interactions(folders["ml"])
    b = read_interactions(folders["atomic"])
    c = read_interactions(folders["jsonl"], folders["items"])
    assert len(a.interactions) == len(b.interactions) == len(c.interactions) == 90
    assert (
        a.titles["3"] == "Movie 3 (1993)"
        and b.titles["3"] == "Movie 3"
        and c.titles["i3"] == "Movie 3"
    )


def test_reader_errors(folders, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user": "u", "item": "i0", "rating": "x", "timestamp": 1}\n{"user": "u"}\n')
    with pytest.raises(DataError) as info:
        read_interactions(bad, folders["items"])
    assert info.value.problems == [
        f"{bad}:1: rating 'x' or timestamp '1' is not a number",
        f"{bad}:2: missing fields ['item', 'rating', 'timestamp']",
    ]
    with pytest.raises(DataError, match="needs an items file"):
        read_interactions(bad)
    with pytest.raises(DataError, match="no u.data/u.item nor"):
        read_interactions(tmp_path)
    (folders["items"]).write_text(json.dumps({"item": "i0", "title": "Only"}) + "\n")
    with pytest.raises(DataError, match="items have no title"):
        read_interactions(folders["jsonl"], folders["items"])


def test_pointwise_has_full_history_and_splits_by_time(folders) -> None:
    data = read_interactions(folders["jsonl"], folders["items"])
    splits = pointwise_splits(data, history=10)
    total = sum(len(v) for v in splits.values())
    assert total == 6 * (15 - 10)
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [24, 3, 3]
    assert max(e.timestamp for e in splits["train"]) <= min(e.timestamp for e in splits["test"])
    for e in splits["train"]:
        assert len(e.preference.liked) + len(e.preference.disliked) == 10
        assert e.label in ("yes", "no")


def test_ranking_never_leaks_the_target(folders) -> None:
    data = read_interactions(folders["jsonl"], folders["items"])
    cases = ranking_cases(data, history=10, negatives=19, seed=3)
    assert cases and cases == ranking_cases(data, history=10, negatives=19, seed=3)
    by_user: dict[str, set[str]] = {}
    for row in data.interactions:
        by_user.setdefault(row.user, set()).add(row.item)
    for case in cases:
        assert len(case.candidates) == 20 and len(set(case.candidates)) == 20
        assert case.target in case.candidates
        negatives = set(case.candidates) - {case.target}
        assert not negatives & by_user[case.preference.user]  # never-rated items only
        assert data.titles[case.target] not in case.preference.liked + case.preference.disliked


def test_target_is_the_last_liked_item() -> None:
    rows = [("u", "a", 5, 1), ("u", "b", 2, 2), ("u", "c", 4, 3), ("u", "d", 1, 4)]
    from rec_edge.recommend.interactions import Interaction

    titles = {x: x.upper() for x in "abcdefghijklmnopqrstuvwxyz"}
    data = InteractionData([Interaction(*r) for r in rows], titles, "test")
    (case,) = ranking_cases(data, history=10, negatives=5)
    assert case.target == "c"
    assert case.preference.liked == ["A"] and case.preference.disliked == ["B"]  # d comes after c


def test_auc_by_hand() -> None:
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.3]) == 1.0
    assert roc_auc([1, 0], [0.2, 0.8]) == 0.0
    # pairs (pos, neg): (0.5,0.5) tie=0.5, (0.5,0.2)=1, (0.7,0.5)=1, (0.7,0.2)=1 -> 3.5/4
    assert roc_auc([1, 1, 0, 0], [0.5, 0.7, 0.5, 0.2]) == 0.875
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.1, 0.2])


def test_ranking_metrics_by_hand() -> None:
    ranked = [["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"]]
    m = ranking_metrics(ranked, ["a", "a", "a"], ks=(1, 2))
    assert m["HR@1"] == pytest.approx(1 / 3)
    assert m["HR@2"] == pytest.approx(2 / 3)
    assert m["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 3)


def test_baselines_on_synthetic_data(folders) -> None:
    from rec_edge.recommend.baselines import pointwise_baselines, rank_baselines

    data = read_interactions(folders["jsonl"], folders["items"])
    cases = ranking_cases(data, negatives=19)
    table = rank_baselines(data, cases)
    assert set(table) == {"random", "most popular"}
    for metrics in table.values():
        assert 0 <= metrics["HR@1"] <= metrics["HR@5"] <= metrics["HR@10"] <= 1
    splits = pointwise_splits(data, history=10)
    auc = pointwise_baselines(data, splits["train"], splits["test"] + splits["validation"])
    assert 0 <= auc["random"]["AUC"] <= 1 and 0 <= auc["most popular"]["AUC"] <= 1
    assert auc["item like rate + user like share"]["AUC"] > 0.5


def test_count_baselines_use_only_the_rows_given() -> None:
    """Two counts and a GBDT from the training and fitting rows a bundle had: on planted data
    where an item's quality decides, both find it; with no training rows, the counts know nothing."""
    from rec_edge.recommend.baselines import count_baselines

    rng = random.Random(3)
    quality = {f"i{i}": i / 30 for i in range(30)}
    rows = [
        (f"u{u}", item, 5 if rng.random() < quality[item] else 1, 100 * t + u)
        for u in range(60)
        for t, item in enumerate(rng.sample(sorted(quality), 20))
    ]
    data = InteractionData(
        [Interaction(u, i, r, t) for u, i, r, t in rows],
        {i: f"Film {i}" for i in quality},
        "planted",
    )
    splits = pointwise_splits(data, history=5)
    table = count_baselines(splits["train"], splits["validation"], splits["test"], seed=0)
    assert set(table) == {"two counts (same rows)", "GBDT on counts (same rows)"}
    assert (
        table["two counts (same rows)"]["AUC"] > 0.7
        and table["GBDT on counts (same rows)"]["AUC"] > 0.65
    )
    blind = count_baselines([], splits["validation"], splits["test"], seed=0)
    # only the user's liked share is left, which says nothing of item quality here
    assert blind["two counts (same rows)"]["AUC"] < table["two counts (same rows)"]["AUC"] - 0.2


def _two_tastes(users: int = 30, seed: int = 1) -> InteractionData:
    """Two groups of users who rate only their own half of 60 items (popularity is flat)."""
    from rec_edge.recommend.interactions import Interaction

    rng = random.Random(seed)
    rows = []
    for u in range(users):
        half = range(0, 30) if u % 2 else range(30, 60)
        for t, item in enumerate(rng.sample(list(half), 12)):
            rows.append(Interaction(f"u{u}", f"i{item}", 4.0 + (t % 2), float(t)))
    return InteractionData(rows, {f"i{i}": f"Movie {i}" for i in range(60)}, "synthetic")


def test_collaborative_baselines_find_the_users_taste() -> None:
    from rec_edge.recommend.baselines import collaborative_rank_baselines, rank_baselines

    data = _two_tastes()
    cases = ranking_cases(data, negatives=19, seed=2)
    table = collaborative_rank_baselines(data, cases)
    assert set(table) == {"item-kNN (implicit)", "ALS (implicit)"}
    chance = rank_baselines(data, cases)["random"]["NDCG@10"]
    # the target lies in the user's half; most negatives lie in the other half
    # (a model that knows the taste ranks the target among ~8 own-half items: NDCG@10 ~0.55)
    assert table["item-kNN (implicit)"]["NDCG@10"] > chance + 0.1
    assert table["ALS (implicit)"]["NDCG@10"] > chance + 0.1


def test_rank_training_pairs_leave_out_ranking_targets_and_draw_unrated_negatives(folders) -> None:
    from rec_edge.config import TrainConfig
    from rec_edge.data.tasks import build_classification

    data = read_interactions(folders["ml"])
    by_user: dict[str, set[str]] = {}
    for r in data.interactions:
        by_user.setdefault(r.user, set()).add(data.titles[r.item])
    held_out = {(c.preference.user, data.titles[c.target]) for c in ranking_cases(data)}
    splits = pointwise_splits(data)
    built = build_classification(TrainConfig(train_file=str(folders["ml"]), task="rank"))
    train = built.train
    assert train.candidates is not None and train.negatives is not None
    assert built.validation.negatives is None  # evaluation scores rated items only
    # the examples kept are the pointwise training split minus the ranking targets, in order
    kept = [e for e in splits["train"] if (e.preference.user, e.candidate) not in held_out]
    assert len(kept) < len(splits["train"]) and train.candidates == [e.candidate for e in kept]
    assert train.rated is not None and built.validation.rated is None
    known = {  # what training may know: every rating but the held-out ranking targets
        user: titles - {t for u, t in held_out if u == user} for user, titles in by_user.items()
    }
    assert any(known[u] != by_user[u] for u in by_user)
    for example, negatives, rated in zip(kept, train.negatives, train.rated, strict=True):
        assert len(negatives) == 1  # the default
        assert not set(negatives) & known[example.preference.user]  # never rated by this user
        assert rated == known[example.preference.user]  # masks the batch's other negatives
    again = build_classification(TrainConfig(train_file=str(folders["ml"]), task="rank"))
    assert again.train.negatives == train.negatives  # seeded
    three = build_classification(
        TrainConfig(train_file=str(folders["ml"]), task="rank", negatives=3)
    ).train.negatives
    assert three is not None and all(len(n) == 3 for n in three)
    none = build_classification(
        TrainConfig(train_file=str(folders["ml"]), task="rank", negatives=0)
    )
    assert none.train.negatives is None
    text = train.texts[0]
    liked, disliked = kept[0].preference.liked, kept[0].preference.disliked
    assert (
        f"liked {len(liked)}" in text
        or f"({len(liked)} of" in text
        or f"Liked ({len(liked)}" in text
    )
    assert all(title in text for title in liked + disliked)
    assert kept[0].candidate not in text  # the item is the other tower's input


def test_item_template_renders_each_layouts_fields(tmp_path) -> None:
    from rec_edge.config import TrainConfig
    from rec_edge.errors import ConfigError

    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "u.data").write_text("1\t1\t5\t10\n1\t2\t1\t20\n")
    (ml / "u.genre").write_text("unknown|0\nAction|1\nComedy|2\n\n")
    (ml / "u.item").write_bytes(
        "1|Heat (1995)|15-Dec-1995||http://x|0|1|0\n2|Big (1988)|01-Jan-1988||http://x|0|0|1\n".encode(
            "latin-1"
        )
    )
    data = read_interactions(ml, item_template="{title}, {year}: {genres}")
    assert data.titles == {"1": "Heat (1995), 1995: Action", "2": "Big (1988), 1988: Comedy"}
    assert data.names == {"1": "Heat (1995)", "2": "Big (1988)"}  # the titles, kept
    atomic = tmp_path / "atomic"
    atomic.mkdir()
    (atomic / "x.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t5\t10\n"
    )
    (atomic / "x.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tHeat\t1995\tAction Crime\n"
    )
    assert read_interactions(atomic, item_template="{title} ({year}), {genres}").titles == {
        "1": "Heat (1995), Action, Crime"
    }
    (tmp_path / "inter.jsonl").write_text(
        '{"user": "u", "item": "a", "rating": 5, "timestamp": 1}\n'
    )
    (tmp_path / "items.jsonl").write_text(
        '{"item": "a", "title": "Heat", "tags": ["heist", "LA"]}\n{"item": "b", "title": "Big"}\n'
    )
    with pytest.raises(
        DataError, match=r"item 'b' has no field \['tags'\].*its fields: \['item', 'title'\]"
    ):
        read_interactions(tmp_path / "inter.jsonl", tmp_path / "items.jsonl", "{title}: {tags}")
    (tmp_path / "items.jsonl").write_text(
        '{"item": "a", "title": "Heat", "tags": ["heist", "LA"]}\n'
    )
    rendered = read_interactions(
        tmp_path / "inter.jsonl", tmp_path / "items.jsonl", "{title}: {tags}"
    )
    assert rendered.titles == {"a": "Heat: heist, LA"}
    for bad in ("{title", "plain text", "{0}"):
        with pytest.raises(ConfigError, match="item_template"):
            TrainConfig(train_file="x", task="rank", item_template=bad)


def test_new_item_cases_rank_held_out_items_among_unrated_new_ones(folders) -> None:
    from rec_edge.recommend.protocols import hold_out_items, new_item_cases

    data = read_interactions(folders["jsonl"], folders["items"])
    new = hold_out_items(data, 0.5, seed=1)
    assert len(new) == round(0.5 * len({r.item for r in data.interactions}))  # one item a title
    twins = InteractionData(data.interactions, {**data.titles, "i1": data.titles["i0"]}, "twins")
    for seed in range(10):  # two items of one title: held out together or not at all
        held = hold_out_items(twins, 0.5, seed)
        assert ("i0" in held) == ("i1" in held)
    assert new == hold_out_items(data, 0.5, seed=1) != hold_out_items(data, 0.5, seed=2)
    cases = new_item_cases(data, new, history=5, negatives=4, seed=0)
    assert cases
    for case in cases:
        rows = sorted(
            (r for r in data.interactions if r.user == case.preference.user),
            key=lambda r: (r.timestamp, r.item),
        )
        rated = {r.item for r in rows}
        assert case.target in new and set(case.candidates) <= new and len(case.candidates) == 5
        assert not (set(case.candidates) - {case.target}) & rated  # never rated by the user
        at = [r.item for r in rows].index(case.target)
        later = [r for r in rows[at + 1 :] if r.item in new and r.rating > 3]
        assert not later  # the user's last liked new item
        history = case.preference.liked + case.preference.disliked
        assert sorted(history) == sorted(data.titles[r.item] for r in rows[max(0, at - 5) : at])
