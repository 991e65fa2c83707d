"""The session-run length: measured on this machine (the fastest of the candidates on texts of
mixed lengths, interleaved), kept per bundle and CPU in the cache folder, fixed with run_length=;
and whatever the runs, a text's answer is the same bit for bit (a caller's batch_size changes
nothing but speed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from rec_edge.errors import ConfigError
from rec_edge.runtime import Predictor, runs
from rec_edge.runtime.runs import RUN_LENGTHS, calibration_texts, fastest

TEXTS = [f"text number {i} " + "word " * (i % 9) for i in range(23)]


def test_the_fastest_length_wins_for_the_cost_it_pays() -> None:
    items = calibration_texts(32)
    assert min(len(t.split()) for t in items) == 4 and max(len(t.split()) for t in items) == 32

    def per_run(chunk, size) -> None:  # every run costs the same: the longest runs win
        time.sleep(0.002)

    def per_slot(chunk, size) -> None:  # every padded slot costs: one text a run wins
        time.sleep(0.0002 * len(chunk) * max(len(t.split()) for t in chunk))

    assert fastest(per_run, items, repeats=1) == 32
    assert fastest(per_slot, items, repeats=1) == 1
    assert fastest(per_run, items[:5], repeats=1) == 4  # none longer than the items


def test_a_measured_length_is_kept_and_reused(tiny_bundle: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path))
    measured = Predictor.load(tiny_bundle).run_length
    assert measured in RUN_LENGTHS
    kept = json.loads((tmp_path / "run-lengths.json").read_text())
    assert list(kept.values()) == [measured]

    def never(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr("rec_edge.runtime.predictor.fastest", never)
    assert Predictor.load(tiny_bundle).run_length == measured  # the same bundle and CPU
    assert Predictor.load(tiny_bundle, run_length=3).run_length == 3  # given: not measured
    with pytest.raises(ConfigError, match="run_length=0"):
        Predictor.load(tiny_bundle, run_length=0)


def test_a_cache_that_cannot_be_written_keeps_nothing(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(runs.CACHE_ENV, str(blocker / "cache"))
    runs.remember("key", 4)  # no error
    assert runs.cached("key") is None
    monkeypatch.setenv(runs.CACHE_ENV, "")  # none at all
    runs.remember("key", 4)
    assert runs.cached("key") is None
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path / "ok"))
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "run-lengths.json").write_text('{"key": 5, "other": "x"}')
    assert runs.cached("key") is None and runs.cached("other") is None  # not a candidate
    runs.remember("key", 8)
    assert runs.cached("key") == 8


@pytest.mark.parametrize("length", [1, 3, 32])
def test_answers_are_the_same_whatever_the_runs(tiny_bundle: Path, length: int) -> None:
    reference = Predictor.load(tiny_bundle, run_length=1)
    alone = np.concatenate([reference.logits([t]) for t in TEXTS])
    predictor = Predictor.load(tiny_bundle, run_length=length)
    for batch_size in (1, 4, len(TEXTS)):
        assert np.array_equal(predictor.logits(TEXTS, batch_size=batch_size), alone)
