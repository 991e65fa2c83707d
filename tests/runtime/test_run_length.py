"""Session runs: a call's texts, sorted by length, cut where the padded tokens plus each run's
measured overhead are least (the overhead timed on this machine, kept per bundle and CPU in the
cache folder), or in runs of a fixed length (run_length=, $REC_EDGE_RUN_LENGTH); and whatever the
runs, a text's answer is the same bit for bit (a caller's batch_size changes nothing but speed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from rec_edge.errors import ConfigError
from rec_edge.runtime import Predictor, runs
from rec_edge.runtime.runs import calibration_texts, fastest, fit_overhead, plan_runs

TEXTS = [f"text number {i} " + "word " * (i % 9) for i in range(23)]


def test_runs_are_cut_where_padding_and_overhead_cost_least() -> None:
    lengths = [5] * 10 + [50] * 10
    assert plan_runs(lengths, 20, overhead=100) == [10, 20]  # 150 + 600 < one run's 1,100
    assert plan_runs(lengths, 20, overhead=10_000) == [20]  # a run costs more than padding
    cuts = plan_runs(lengths, 8, overhead=10_000)  # as few runs as the limit allows
    assert len(cuts) == 3 and cuts[-1] == 20
    assert max(b - a for a, b in zip([0, *cuts[:-1]], cuts, strict=True)) <= 8
    alone = plan_runs([3, 4, 5, 6], 4, overhead=0)  # free runs: no padding at all
    assert alone == [1, 2, 3, 4]
    assert plan_runs([], 4, overhead=1) == []


def test_the_overhead_is_fitted_from_timed_shapes() -> None:
    def seconds(texts: int, tokens: int) -> float:  # 2 ms a run, 10 us a token
        return 0.002 + 0.00001 * texts * tokens

    assert fit_overhead(seconds, repeats=1) == pytest.approx(200, rel=1e-6)
    assert fit_overhead(lambda n, t: 0.001, repeats=1) > 1000  # no token cost: one long run


def test_the_fastest_fixed_length_wins_for_the_cost_it_pays() -> None:
    items = calibration_texts(32)
    assert min(len(t.split()) for t in items) == 4 and max(len(t.split()) for t in items) == 32

    def runs_of(texts, size):  # as the Predictor cuts a call: sorted by length, then runs
        ordered = sorted(texts, key=lambda t: len(t.split()))
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]

    def per_run(texts, size) -> None:  # every run costs the same: the longest runs win
        time.sleep(0.002 * len(runs_of(texts, size)))

    assert fastest(per_run, items, repeats=1) == 32
    assert fastest(per_run, items[:5], repeats=1) == 4  # none longer than the items


def test_a_measured_overhead_is_kept_and_reused(tiny_bundle: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(runs.RUN_LENGTH_ENV, raising=False)  # conftest fixes it for other tests
    predictor = Predictor.load(tiny_bundle)
    assert predictor.run_length is None
    measured = predictor.run_overhead
    assert measured >= 0
    kept = json.loads((tmp_path / "run-costs.json").read_text())
    assert list(kept.values()) == [measured]

    def never(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr("rec_edge.runtime.predictor.fit_overhead", never)
    assert Predictor.load(tiny_bundle).run_overhead == measured  # the same bundle and CPU
    assert Predictor.load(tiny_bundle, run_length=3).run_length == 3  # given: fixed runs
    with pytest.raises(ConfigError, match="run_length=0"):
        Predictor.load(tiny_bundle, run_length=0)
    monkeypatch.setenv(runs.RUN_LENGTH_ENV, "2")  # set for every Predictor
    assert Predictor.load(tiny_bundle).run_length == 2
    monkeypatch.setenv(runs.RUN_LENGTH_ENV, "many")
    with pytest.raises(ConfigError, match="REC_EDGE_RUN_LENGTH='many'"):
        Predictor.load(tiny_bundle)


def test_a_cache_that_cannot_be_written_keeps_nothing(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(runs.CACHE_ENV, str(blocker / "cache"))
    runs.remember("key", 4.0)  # no error
    assert runs.cached("key") is None
    monkeypatch.setenv(runs.CACHE_ENV, "")  # none at all
    runs.remember("key", 4.0)
    assert runs.cached("key") is None
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path / "ok"))
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "run-costs.json").write_text('{"key": -5, "other": "x"}')
    assert runs.cached("key") is None and runs.cached("other") is None  # not an overhead
    runs.remember("key", 8.5)
    assert runs.cached("key") == 8.5


@pytest.mark.parametrize("length", [1, 3, 32, None])
def test_answers_are_the_same_whatever_the_runs(
    tiny_bundle: Path, length: int | None, monkeypatch
) -> None:
    monkeypatch.delenv(runs.RUN_LENGTH_ENV, raising=False)
    reference = Predictor.load(tiny_bundle, run_length=1)
    alone = np.concatenate([reference.logits([t]) for t in TEXTS])
    predictor = Predictor.load(tiny_bundle, run_length=length)  # None: planned per call
    for batch_size in (1, 4, len(TEXTS)):
        assert np.array_equal(predictor.logits(TEXTS, batch_size=batch_size), alone)
