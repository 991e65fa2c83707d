"""The server's session-run length: given, or on the CPU the fastest measured at load on this
machine (a real bundle, with a known cost per run or per padded text added, large against the
model's own time and its noise on a busy machine, so that the right answer is known), and
reported by ``GET /v1/models``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rec_edge.config import ServeConfig
from rec_edge.runtime import Predictor
from rec_edge.serve.models import SESSION_BATCHES, calibration_batch, session_batch


class Costly:
    """A real Predictor whose runs cost ``per_run`` seconds each plus ``per_slot`` seconds per
    padded slot (texts x the run's longest text, in words): overhead-bound or padding-bound."""

    def __init__(self, predictor: Predictor, per_run: float = 0.0, per_slot: float = 0.0):
        self.predictor, self.per_run, self.per_slot = predictor, per_run, per_slot
        self.manifest, self.labels = predictor.manifest, predictor.manifest.labels
        self.catalog = getattr(predictor, "catalog", [])
        self.sizes: set[int] = set()

    def _cost(self, items: list[Any], size: int) -> None:
        """The cost of a call cut as the runtime cuts it: sorted by length, runs of ``size``."""
        self.sizes.add(size)
        ordered = sorted(items, key=lambda i: len(str(i).split()))
        for start in range(0, len(ordered), size):
            run = ordered[start : start + size]
            longest = max(len(str(i).split()) for i in run)
            time.sleep(self.per_run + self.per_slot * len(run) * longest)

    def logits(self, texts: list[str], batch_size: int = 32) -> Any:
        self._cost(texts, batch_size)
        return self.predictor.logits(texts, batch_size)

    def rank_batch(self, requests: list[Any], batch_size: int = 32) -> Any:
        self._cost(requests, batch_size)
        return self.predictor.rank_batch(requests, batch_size)


def config(**fields: Any) -> ServeConfig:
    return ServeConfig(bundles={"m": "unused"}, **fields)


def test_a_given_length_or_another_provider_is_not_measured(tiny_bundle: Path) -> None:
    never = Costly(Predictor.load(tiny_bundle), per_run=1.0)
    assert session_batch(never, config(session_batch=3)) == 3  # type: ignore[arg-type]
    assert session_batch(never, config(provider="cuda", max_batch=16)) == 16  # type: ignore[arg-type]
    assert never.sizes == set()


def test_the_fastest_length_is_kept(tiny_bundle: Path) -> None:
    predictor = Predictor.load(tiny_bundle)
    overhead = Costly(predictor, per_run=0.01)  # every run costs the same: the longest wins
    assert session_batch(overhead, config()) == 32  # type: ignore[arg-type]
    assert overhead.sizes == set(SESSION_BATCHES)
    # padded slots cost: short runs win (sorted by length, runs of 1, 2 and 4 pad a few words
    # at most, a tie within the real model's own time; 32 pads to the longest text)
    padding = Costly(predictor, per_slot=0.0002)
    assert session_batch(padding, config()) in (1, 2, 4)  # type: ignore[arg-type]
    assert session_batch(overhead, config(max_batch=8)) == 8  # type: ignore[arg-type]


def test_rank_bundles_are_measured_on_rank_requests(rank_bundle: Path) -> None:
    predictor = Predictor.load(rank_bundle)
    requests = calibration_batch(predictor, 8)
    assert all(len(r.liked) == 10 and len(r.candidates) == 20 for r in requests)
    assert set(requests[0].candidates) <= set(predictor.catalog)
    overhead = Costly(predictor, per_run=0.01)
    assert session_batch(overhead, config()) == 8  # type: ignore[arg-type]
    assert overhead.sizes == {1, 2, 4, 8}


@pytest.mark.parametrize("size", [1, 5, 32])
def test_calibration_texts_vary_in_length(tiny_bundle: Path, size: int) -> None:
    texts = calibration_batch(Predictor.load(tiny_bundle), size)
    assert len(texts) == size
    if size == 32:
        assert min(len(t.split()) for t in texts) == 4 and max(len(t.split()) for t in texts) == 32
