"""One Predictor per bundle shared by 8 threads, 1,000 mixed predict/rank calls each: every answer
is the one the same call gets alone, in sequence."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from rec_edge.runtime import Predictor
from tests.helpers import make_examples

pytestmark = pytest.mark.slow
THREADS, CALLS = 8, 1000


def _calls(seed: int, texts: list[str], titles: list[str]) -> list[tuple[str, tuple]]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    calls: list[tuple[str, tuple]] = []  # type: ignore[type-arg]
    for _ in range(60):
        if rng.random() < 0.5:
            calls.append(("predict", tuple(rng.sample(texts, rng.randint(1, 12)))))
        else:
            history = rng.sample(titles, 6)
            candidates = rng.sample(titles, rng.randint(1, 15)) + [
                f"A film never seen {rng.randint(0, 40)}" for _ in range(rng.randint(0, 3))
            ]
            calls.append(("rank", (tuple(history[:4]), tuple(history[4:]), tuple(candidates))))
    return calls


def test_threads_give_the_sequential_answers(tiny_bundle: Path, rank_bundle: Path) -> None:
    classify = Predictor.load(tiny_bundle)
    # a small item cache: new titles are encoded, cached and evicted while other threads read it
    ranker = Predictor.load(rank_bundle, item_cache=8)
    texts = [r["text"] for r in make_examples(10, seed=9)]
    titles = [f"Movie {i}" for i in range(40)]
    calls = _calls(0, texts, titles)

    def answer(call: tuple[str, tuple]):  # type: ignore[no-untyped-def,type-arg]
        kind, args = call
        if kind == "predict":
            return classify.predict_proba(list(args))
        liked, disliked, candidates = args
        ranked = ranker.rank({"liked": list(liked), "disliked": list(disliked)}, list(candidates))
        return {r.item: (r.score, r.enjoy) for r in ranked}

    expected = [answer(call) for call in calls]
    rng = random.Random(1)
    plans = [[rng.randrange(len(calls)) for _ in range(CALLS)] for _ in range(THREADS)]

    def worker(plan: list[int]) -> int:
        mismatches = 0
        for index in plan:
            got, want = answer(calls[index]), expected[index]
            if calls[index][0] == "predict":
                mismatches += not np.array_equal(got, want)  # calibrated int8: bit for bit
            else:  # fp32 graph: an item's vector may come from the cache or another batch
                mismatches += got.keys() != want.keys() or not np.allclose(
                    [got[k] for k in want], [want[k] for k in want], rtol=1e-5, atol=1e-6
                )
        return mismatches

    with ThreadPoolExecutor(THREADS) as pool:
        mismatches = list(pool.map(worker, plans))
    assert mismatches == [0] * THREADS
    assert len(ranker._items) <= 8
