"""The collaborative stage: its torch tables compute what the runtime's numpy tables compute, and
fitting finds what interactions say that titles do not."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch

from rec_edge.errors import RunError
from rec_edge.recommend.collab import CollabConfig, collab_module, fit_collaborative, fit_tables
from rec_edge.recommend.interactions import Interaction, InteractionData
from rec_edge.recommend.protocols import pointwise_splits
from rec_edge.recommend.tables import CollaborativeTables, log_sigmoid


def test_torch_tables_match_the_runtime_formulas() -> None:
    torch.manual_seed(0)
    titles = [f"T{i}" for i in range(6)]
    module = collab_module(len(titles), dim=3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
        module.like_bias[-1] = module.exposure_bias[-1] = 0.0  # the pad row stays zero
        for name in ("like_vectors", "liked_vectors", "disliked_vectors", "exposure_vectors"):
            getattr(module, name)[-1] = 0.0
    tables = module.tables(titles)
    pad = len(titles)
    liked = torch.tensor([[0, 2, pad]])
    disliked = torch.tensor([[5, pad, pad]])
    items = torch.tensor([1, 3, 4])
    with torch.no_grad():
        q, offset = module.user(liked, disliked)
        like = module.like(q, offset, items)  # one user against each item
        exposure = module.exposure(q, items, cross=True)[0]
    user = tables.user(["T0", "T2"], ["T5"])
    np.testing.assert_allclose(user.vector, q[0].numpy(), rtol=1e-5)
    assert np.isclose(user.like_offset, float(offset[0]), rtol=1e-5)  # w * 2/3
    np.testing.assert_allclose(tables.like(user, ["T1", "T3", "T4"]), like.numpy(), rtol=1e-5)
    np.testing.assert_allclose(tables.exposure(user, ["T1", "T3", "T4"]), exposure, rtol=1e-5)
    # off the catalog: no like terms but the share, the mean exposure; history titles skipped
    assert np.isclose(tables.like(user, ["New"])[0], user.like_offset)
    assert np.isclose(tables.exposure(user, ["New"])[0], tables.exposure_bias.mean())
    unknown = tables.user(["T0", "T2", "New"], ["T5"])
    np.testing.assert_allclose(unknown.vector, user.vector)
    assert np.isclose(unknown.like_offset, tables.share_weight * 3 / 4)
    # saved and loaded as the bundle's item index holds them
    back = CollaborativeTables.from_arrays({"titles": np.array(titles), **tables.to_arrays()})
    assert back is not None and back.index == tables.index
    np.testing.assert_allclose(back.like(user, ["T1"]), tables.like(user, ["T1"]))
    assert CollaborativeTables.from_arrays({"titles": np.array(titles)}) is None
    assert np.allclose(log_sigmoid(np.array([0.0, 50.0, -50.0])), [np.log(0.5), 0.0, -50.0])


def _planted(seed: int = 0, users: int = 40) -> InteractionData:
    """40 users x 40 items: items 0-9 are watched by most users (popular); item i is liked with
    probability i / 40 (quality rises with the id, unrelated to popularity); titles say nothing."""
    rng = random.Random(seed)
    rows = []
    for u in range(users):
        watched = rng.sample(range(10), 8) + rng.sample(range(10, 40), 10)
        rng.shuffle(watched)
        for t, item in enumerate(watched):
            rating = 5 if rng.random() < item / 40 else 1
            rows.append(Interaction(f"u{u}", f"i{item}", rating, 1000 * t + u))
    return InteractionData(rows, {f"i{i}": f"Film {i:02d}" for i in range(40)}, "planted")


def test_fit_learns_exposure_and_quality_that_titles_do_not_carry() -> None:
    data = _planted()
    splits = pointwise_splits(data, history=5)
    train, validation = splits["train"], splits["validation"]
    zeros = np.zeros(len(train)), np.zeros(len(validation))  # a text model that knows nothing
    tables, record = fit_tables(
        data,
        train,
        validation,
        *zeros,
        history=5,
        config=CollabConfig(
            dim=4, epochs=30, patience=5, learning_rate=0.05, batch_size=32, negatives=16
        ),
    )
    assert record["validation_auc_text_only"] == 0.5
    assert record["validation_auc"] > 0.7 and record["best_epoch"] > 0
    # quality: the like bias rises with the item id (rank correlation over the catalog)
    rows = [tables.index[f"Film {i:02d}"] for i in range(40)]
    like_rank = np.argsort(np.argsort(tables.like_bias[rows]))
    assert np.corrcoef(like_rank, np.arange(40))[0, 1] > 0.6
    # exposure: the ten popular items above the thirty others
    exposure = tables.exposure_bias[rows]
    assert exposure[:10].min() > np.median(exposure[10:])


@pytest.mark.slow  # trains the tiny classify run
def test_fit_collaborative_wants_a_finished_rank_run(tiny_run) -> None:  # type: ignore[no-untyped-def]

    with pytest.raises(RunError, match="not a finished rank run"):
        fit_collaborative(tiny_run.run_dir)  # a classify run
    with pytest.raises(RunError, match="does not exist"):
        fit_collaborative("no/such/run")


def _planted_tables() -> tuple[InteractionData, dict[str, list], CollaborativeTables]:
    data = _planted(users=200)
    splits = pointwise_splits(data, history=5)
    zeros = np.zeros(len(splits["train"])), np.zeros(len(splits["validation"]))
    config = CollabConfig(dim=4, epochs=10, patience=3, learning_rate=0.05, batch_size=32)
    tables, _ = fit_tables(data, splits["train"], splits["validation"], *zeros, 5, config)
    return data, splits, tables


def _auc(tables: CollaborativeTables, rows: list, text: np.ndarray) -> float:
    from rec_edge.metrics import roc_auc
    from rec_edge.recommend.tables import add_tables

    like = [
        add_tables(tables, r.preference.liked, r.preference.disliked, [r.candidate], np.array([t]))[
            0
        ][0]
        for r, t in zip(rows, text, strict=True)
    ]
    return roc_auc([int(r.label == "yes") for r in rows], like)


@pytest.mark.parametrize("text_knows", [False, True])
def test_the_stack_is_never_worse_than_its_parts(text_knows: bool) -> None:
    """A loud text score that is noise is turned down (the unstacked sum drowns the tables in
    it); a text score that knows the answer is kept."""
    from rec_edge.recommend.protocols import unrated_sampler
    from rec_edge.recommend.stack import fit_stack

    data, splits, tables = _planted_tables()
    rng = np.random.default_rng(1)

    def text(rows: list) -> np.ndarray:
        if text_knows:  # the label itself, blurred
            return np.array([4.0 * (r.label == "yes") for r in rows]) + rng.normal(0, 1, len(rows))
        return rng.normal(0, 10, len(rows))

    validation, test = splits["validation"], splits["test"]
    text_validation, text_test = text(validation), text(test)
    draw = unrated_sampler(data, 0)
    rows = {t: rng.normal(0, 1, 5) for t in sorted(tables.index)}  # an item space that says nothing
    stacked, record = fit_stack(
        tables, splits["train"], validation, text_validation, draw, data.titles, rows
    )
    assert stacked.stack is not None and tables.stack is None
    scores = record["like"]["validation_auc"]
    chosen = " + ".join(record["like"]["chosen"])
    best_part = max(scores[part] for part in ("text", "tables", "item like rate"))
    assert scores[chosen] >= best_part - 0.002  # as good as each part alone, on validation
    assert ("text" in record["like"]["chosen"]) == text_knows
    unstacked, after = _auc(tables, test, text_test), _auc(stacked, test, text_test)
    if text_knows:
        assert after > 0.9 and record["like"]["weights"]["text"] > 0
    else:  # the tables' and counts' knowledge comes through
        assert unstacked < 0.6 < 0.65 < after
    # a title outside the catalog: the new-item weights (text, share; no similarity given: 0)
    from rec_edge.recommend.tables import add_tables

    n = stacked.stack.new_item_weights
    like, _ = add_tables(
        stacked, ["Film 01"], [], ["Film 02", "Not a film of the catalog"], np.array([1.5, 1.5])
    )
    assert np.isclose(
        like[1], n[0] * 1.5 + n[1] * np.log(2 / 1) + n[3], atol=1e-5
    )  # share (1+1)/(1+2)
    assert (n[0] > 0.5) == text_knows and record["new_item"]["text"] == round(n[0], 6)
    # the stack travels in the item index and comes back the same
    back = CollaborativeTables.from_arrays(
        {"titles": np.array(sorted(tables.index)), **stacked.to_arrays()}
    )
    assert back is not None and back.stack is not None
    assert _auc(back, test, text_test) == after
    broken = {**stacked.to_arrays(), "like_weights": np.zeros(3)}
    with pytest.raises(ValueError, match="do not fit"):
        CollaborativeTables.from_arrays({"titles": np.array(sorted(tables.index)), **broken})


def test_the_stack_starts_from_the_counts() -> None:
    """Two counts that carry the same signal score alike on validation: the plain choice keeps one
    of them by chance; from the base, both are kept, and a part that adds nothing stays out. A part
    far better than the base alone makes the base give way."""
    from rec_edge.recommend.stack import TOLERANCE, choose

    rng = np.random.default_rng(0)
    labels = (rng.random(300) < 0.5).astype(float)
    signal = labels + rng.normal(0, 1.2, 300)
    share, rate = signal + rng.normal(0, 0.05, 300), signal + rng.normal(0, 0.05, 300)
    noise = rng.normal(0, 1, 300)
    names = ("noise", "share", "rate")
    _, plain = choose(np.column_stack([noise, share, rate]), labels, names, seed=0)
    _, kept = choose(np.column_stack([noise, share, rate]), labels, names, seed=0, base=names[1:])
    assert len(plain["chosen"]) == 1 and plain["chosen"][0] in ("share", "rate")
    assert kept["chosen"] == ["share", "rate"] and kept["base_kept"]
    scores = kept["validation_auc"]
    assert scores["share + rate"] >= max(scores["share"], scores["rate"]) - TOLERANCE
    # a part that knows the labels: the base with it, or (as here) the part alone if the base
    # would pull it below itself
    knows = labels + rng.normal(0, 0.1, 300)
    names = ("knows", "share", "rate")
    _, strong = choose(np.column_stack([knows, share, rate]), labels, names, seed=0, base=names[1:])
    assert "knows" in strong["chosen"]
    assert strong["validation_auc"][" + ".join(strong["chosen"])] >= (
        strong["validation_auc"]["knows"] - TOLERANCE
    )


def test_a_part_joins_the_counts_only_above_the_noise() -> None:
    """A score that knows nothing can add more than TOLERANCE to the counts on a few hundred rows
    by chance; it stays out, since that gain is inside one standard error of the difference. A
    weak part that knows a little joins once there are rows enough to see it."""
    from rec_edge.metrics import auc_difference_se
    from rec_edge.recommend.stack import TOLERANCE, choose

    def case(n: int, seed: int, knows: float) -> tuple[list[str], float, float]:
        rng = np.random.default_rng(seed)
        labels = (rng.random(n) < 0.5).astype(float)
        signal = labels + rng.normal(0, 1.2, n)
        share, rate = signal + rng.normal(0, 0.05, n), signal + rng.normal(0, 0.05, n)
        part = knows * labels + rng.normal(0, 1, n)
        names = ("part", "share", "rate")
        _, record = choose(np.column_stack([part, share, rate]), labels, names, 0, base=names[1:])
        scores = record["validation_auc"]
        gain = scores["part + share + rate"] - scores["share + rate"]
        noise = auc_difference_se(labels.tolist(), share + rate + part, share + rate)
        return record["chosen"], gain, noise

    chosen, gain, noise = case(300, seed=2, knows=0.0)
    assert gain > TOLERANCE and gain < noise  # a chance gain the fixed tolerance would take
    assert chosen == ["share", "rate"]
    chosen, gain, noise = case(20_000, seed=0, knows=0.2)
    assert gain > max(TOLERANCE, noise)
    assert chosen == ["part", "share", "rate"]


def test_item_counts_count_each_user_and_title_once() -> None:
    from rec_edge.recommend.protocols import PointwiseExample, Preference, item_counts

    rows = [
        PointwiseExample(Preference("u1", ["A", "B"], ["C"]), "D", "yes", 1.0),
        PointwiseExample(Preference("u1", ["B", "D"], ["C"]), "A", "no", 2.0),  # A: liked, then not
        PointwiseExample(Preference("u2", [], ["A"]), "B", "no", 3.0),
    ]
    rated, liked = item_counts(rows, ["A", "B", "C", "D", "E"])
    assert rated.tolist() == [2, 2, 1, 1, 0]
    assert liked.tolist() == [0, 1, 0, 1, 0]


def test_history_similarity_is_the_cosine_with_the_liked_profile() -> None:
    from rec_edge.recommend.tables import history_similarity

    liked = np.array([[1.0, 0.0, 9.0], [0.0, 2.0, -9.0]])  # the last column (bias) is left out
    items = np.array([[1.0, 1.0, 5.0], [1.0, -1.0, 5.0], [-3.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        history_similarity(liked, items), [1.0, 0.0, -np.sqrt(0.5)], atol=1e-12
    )
    assert history_similarity(liked[:0], items).tolist() == [0.0, 0.0, 0.0]


def test_word_similarity_is_tf_idf_with_the_liked_profile() -> None:
    """The catalog's words weigh as scikit-learn's smoothed idf with sublinear tf; a word of one
    text (or of none) weighs as one text's word; the profile is the liked texts' mean."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from rec_edge.recommend.tables import Words

    catalog = [
        "Heat (1995), Action Crime",
        "Casino (1995), Crime Drama",
        "Babe (1995), Children Comedy",
        "Fargo (1996), Crime Drama Thriller",
        "Crime crime crime (1996), Crime",
    ]
    words = Words.fit(catalog)
    assert "crime" in words.idf and "heat" not in words.idf  # one text: stored as ``rare``
    vectorizer = TfidfVectorizer(sublinear_tf=True, token_pattern=r"\w+")
    vectors = vectorizer.fit_transform(catalog).toarray()
    liked, items = [0, 1], [2, 3, 4]
    profile = vectors[liked].mean(0)
    expected = vectors[items] @ profile / np.linalg.norm(profile)
    got = words.similarity([catalog[i] for i in liked], [catalog[i] for i in items])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert words.similarity([], catalog).tolist() == [0.0] * 5
    arrays = words.to_arrays()
    back = Words.from_arrays(arrays["word_list"], arrays["word_idf"])
    assert back == words
    # a text off the catalog: its unknown words weigh as rare ones and count in its norm
    assert 0.0 < words.similarity(["Crime"], ["Crime Zyzzyva"])[0] < 1.0


def _genre_data(users: int = 160, seed: int = 0, named: bool = True) -> InteractionData:
    """48 titles in 4 genres named in the text (unless not ``named``); a user watches mostly
    titles of one genre (the text says which titles a user watches) and likes them at random (it
    does not say that)."""
    rng = random.Random(seed)
    genres = ("western", "comedy", "horror", "musical")
    titles = {f"i{i}": f"Film {i:02d}" + f", {genres[i % 4]}" * named for i in range(48)}
    rows = []
    for u in range(users):
        favourite = [i for i in range(48) if i % 4 == u % 4]
        others = [i for i in range(48) if i % 4 != u % 4]
        watched = rng.sample(favourite, 10) + rng.sample(others, 2)
        rng.shuffle(watched)
        for t, item in enumerate(watched):
            rows.append(Interaction(f"u{u}", f"i{item}", 5 if rng.random() < 0.6 else 1, t))
    return InteractionData(rows, titles, "genres")


def _genre_stack(
    data: InteractionData,
) -> tuple[CollaborativeTables, dict[str, Any], CollaborativeTables]:
    """The stacked tables of ``data`` (text logits zero, an item space of noise: it says nothing),
    the stack's record, and the tables before it."""
    from rec_edge.recommend.protocols import unrated_sampler
    from rec_edge.recommend.stack import fit_stack

    splits = pointwise_splits(data, history=5)
    train, validation = splits["train"], splits["validation"]
    config = CollabConfig(dim=4, epochs=5, patience=2, learning_rate=0.05, batch_size=32)
    zeros = np.zeros(len(train)), np.zeros(len(validation))
    tables, _ = fit_tables(data, train, validation, *zeros, 5, config)
    rng = np.random.default_rng(0)
    rows = {t: rng.normal(0, 1, 5) for t in sorted(tables.index)}
    stacked, record = fit_stack(
        tables, train, validation, zeros[1], unrated_sampler(data, 0), data.titles, rows
    )
    return stacked, record, tables


def test_new_items_are_exposed_by_their_words() -> None:
    """Schema 1.4: a title outside the catalog gets an exposure from its word similarity to the
    liked history, fitted on the exposure pairs; tables without it (1.3) give the catalog mean."""
    from rec_edge.recommend.tables import add_tables

    data = _genre_data()
    stacked, record, tables = _genre_stack(data)
    assert stacked.stack is not None and stacked.stack.new_exposure_weights is not None
    fitted = record["new_item_exposure"]
    assert (
        fitted["validation_auc"]["word similarity"] > 0.75 and "word similarity" in fitted["chosen"]
    )
    assert fitted["weights"]["word similarity"] > 0
    western_fan = [data.titles[f"i{i}"] for i in (0, 4, 8)]
    new = ["Film 90, western", "Film 91, horror"]
    _, exposure = add_tables(stacked, western_fan, [], new, np.zeros(2))
    assert exposure is not None and exposure[0] > exposure[1] + 1.0
    # the catalog's titles keep their own exposure; new ones in the same request get theirs
    known = data.titles["i12"]
    _, mixed = add_tables(stacked, western_fan, [], [known, *new], np.zeros(3))
    _, alone = add_tables(stacked, western_fan, [], [known], np.zeros(1))
    assert mixed is not None and alone is not None
    np.testing.assert_allclose(mixed, [alone[0], *exposure], rtol=1e-6)
    # through the item index and back; a 1.3 index (no words) gives new items the same exposure
    arrays = {"titles": np.array(sorted(tables.index)), **stacked.to_arrays()}
    back = CollaborativeTables.from_arrays(arrays)
    assert back is not None
    np.testing.assert_allclose(add_tables(back, western_fan, [], new, np.zeros(2))[1], exposure)
    old = {
        k: v
        for k, v in arrays.items()
        if k not in ("new_exposure_weights", "word_list", "word_idf")
    }
    before = CollaborativeTables.from_arrays(old)
    assert before is not None and before.stack is not None and before.stack.words is None
    _, flat = add_tables(before, western_fan, [], new, np.zeros(2))
    assert flat is not None and flat[0] == flat[1]
    with pytest.raises(ValueError, match="lack \\['word_list'"):
        CollaborativeTables.from_arrays(
            {**old, "new_exposure_weights": np.zeros(3), "word_idf": np.ones(1)}
        )


def test_new_items_get_one_exposure_when_no_part_beats_chance() -> None:
    """The guard: titles without their genre and an item space of noise tell nothing about what a
    user watches, so every new title gets the same exposure (the constant), not a noise fit."""
    from rec_edge.recommend.tables import add_tables

    data = _genre_data(named=False)
    stacked, record, _ = _genre_stack(data)
    fitted = record["new_item_exposure"]
    assert fitted["chosen"] == [] and 0.0 < fitted["chance_margin"] < 0.1
    assert max(fitted["validation_auc"].values()) < 0.5 + fitted["chance_margin"]
    assert stacked.stack is not None and stacked.stack.new_exposure_weights is not None
    assert stacked.stack.new_exposure_weights[:-1].tolist() == [0.0, 0.0]
    liked = [data.titles[f"i{i}"] for i in (0, 4, 8)]
    _, exposure = add_tables(stacked, liked, [], ["Film 90", "Film 91", "Film 92"], np.zeros(3))
    assert exposure is not None and len(set(exposure.tolist())) == 1


def _taste_data(users: int = 120, seed: int = 0) -> InteractionData:
    """Two tastes: a user of taste A likes the A titles and not the B titles, taste B the reverse.
    Every title is liked by half its users and every user likes about half the titles rated, so
    the two rates know nothing; which titles the user liked before says everything."""
    rng = random.Random(seed)
    titles = {f"i{i}": f"Film {i:02d}" for i in range(30)}
    rows = []
    for u in range(users):
        for t, item in enumerate(rng.sample(range(30), 14)):
            liked = (item % 2 == 0) == (u % 2 == 0)
            rows.append(Interaction(f"u{u}", f"i{item}", 5 if liked else 1, t))
    return InteractionData(rows, titles, "tastes")


def test_colike_factors_give_the_cosines_of_like_residuals() -> None:
    """Schema 1.5: ``F @ F.T`` is the cosine of two titles' like residuals across the users (exact
    here: fewer titles than factors), computed from the nonzero entries alone."""
    from rec_edge.recommend.protocols import user_ratings
    from rec_edge.recommend.stack import COLIKE_DIM, colike_factors
    from rec_edge.recommend.tables import Stack

    data = _taste_data(users=40)
    rows = pointwise_splits(data, history=5)["train"]
    titles = sorted(set(data.titles.values()))[:20]  # the others: off this catalog
    ratings = user_ratings(rows)
    users = sorted({u for u, _ in ratings})
    rated = np.array([sum(t == x for _, x in ratings) for t in titles], dtype=float)
    liked = np.array([sum(y for (_, x), y in ratings.items() if x == t) for t in titles], float)
    zeros = np.zeros(COLIKE_DIM)
    stack = Stack(rated, liked, zeros, zeros, zeros)
    residuals = np.zeros((len(users), len(titles)))
    rates = stack.rates(np.arange(len(titles)), np.ones(len(titles), dtype=bool))
    for (u, t), y in ratings.items():
        if t in titles:
            residuals[users.index(u), titles.index(t)] = float(y) - rates[titles.index(t)]
    unit = residuals / np.linalg.norm(residuals, axis=0)
    factors = colike_factors(rows, titles, stack)
    assert factors.shape == (20, COLIKE_DIM) and factors.dtype == np.float32
    np.testing.assert_allclose(factors @ factors.T, unit.T @ unit, atol=1e-4)
    # tastes: titles of one taste co-liked, of the other opposed
    cosine = factors @ factors.T
    assert cosine[0, 2] > 0.3 and cosine[0, 1] < -0.3


def test_lenience_and_coliked_history_find_what_the_counts_do_not() -> None:
    """The like parts of schema 1.5 by their formulas, chosen by the stack where the two rates
    know nothing; a 1.4 index (five like weights, no factors) still loads and weighs them 0."""
    from rec_edge.recommend.protocols import unrated_sampler
    from rec_edge.recommend.stack import fit_stack
    from rec_edge.recommend.tables import add_tables, like_features

    data = _taste_data()
    splits = pointwise_splits(data, history=5)
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    titles = sorted(set(data.titles.values()))
    # tables that learned nothing (fitted ones learn the tastes too), a text that knows nothing
    flat, index = np.zeros((len(titles), 4), dtype=np.float32), {t: i for i, t in enumerate(titles)}
    tables = CollaborativeTables(index, flat[:, 0], flat, flat, flat, flat[:, 0], flat, 0.0)
    rng = np.random.default_rng(0)
    item_rows = {t: rng.normal(0, 1, 5) for t in titles}
    text = np.zeros(len(validation))
    stacked, record = fit_stack(
        tables, train, validation, text, unrated_sampler(data, 0), data.titles, item_rows
    )
    stack = stacked.stack
    assert stack is not None and stack.colike is not None
    scores = record["like"]["validation_auc"]
    assert scores["co-liked history"] > 0.9 > 0.65 > scores["user liked share + item like rate"]
    assert "co-liked history" in record["like"]["chosen"]
    assert record["like"]["weights"]["co-liked history"] > 0
    # the formulas, by hand, for one request
    liked, disliked, items = (
        ["Film 00", "Film 02"],
        ["Film 01", "Not a film"],
        ["Film 04", "Film 05"],
    )
    features = like_features(stacked, liked, disliked, items, np.zeros(2))
    index = stacked.index
    rate = {
        t: (stack.liked[index[t]] + 5 * stack.prior) / (stack.rated[index[t]] + 5) for t in index
    }
    residual = [1 - rate["Film 00"], 1 - rate["Film 02"], 0 - rate["Film 01"], 0 - stack.prior]
    assert np.isclose(features[0, 5], sum(residual) / 6)
    f = stack.colike.astype(np.float64)
    for row, item in enumerate(items):
        cosine = np.array([f[index[item]] @ f[index[t]] for t in ["Film 00", "Film 02", "Film 01"]])
        expected = cosine @ residual[:3] / (np.abs(cosine).sum() + 1)
        assert np.isclose(features[row, 6], expected, atol=1e-6)
    assert features[0, 6] > 0 > features[1, 6]  # an A title for an A user, a B title
    assert like_features(stacked, liked, disliked, ["Not a film"], np.zeros(1))[0, 6] == 0.0
    assert _auc(stacked, test, np.zeros(len(test))) > 0.85
    # an index from before 1.5: five like weights and no factors; the new parts weigh 0
    arrays = {"titles": np.array(sorted(index)), **stacked.to_arrays()}
    old_weights = np.append(stack.like_weights[:5], stack.like_weights[-1])
    old = {k: v for k, v in arrays.items() if k != "item_colike"}
    before = CollaborativeTables.from_arrays({**old, "like_weights": old_weights})
    assert before is not None and before.stack is not None and before.stack.colike is None
    like, _ = add_tables(before, liked, disliked, items, np.zeros(2))
    np.testing.assert_allclose(
        like, features[:, :5] @ old_weights[:-1] + old_weights[-1], rtol=1e-5
    )
    back = CollaborativeTables.from_arrays(arrays)
    assert back is not None
    np.testing.assert_array_equal(
        add_tables(back, liked, disliked, items, np.zeros(2))[0],
        add_tables(stacked, liked, disliked, items, np.zeros(2))[0],
    )
    with pytest.raises(ValueError, match="item_colike of shape"):
        CollaborativeTables.from_arrays({**arrays, "item_colike": np.zeros((3, 4))})
