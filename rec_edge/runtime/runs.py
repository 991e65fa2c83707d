"""TORCH-FREE: how a call's texts are cut into session runs on this machine. A run costs a fixed
overhead plus its padded tokens; how many tokens' worth the overhead is depends on the CPU and
the model, so it is measured (``fit_overhead``: runs of a few shapes, timed at first use and kept
per bundle and CPU in the user's cache folder), and each call's texts, sorted by length, are cut
where the padded tokens plus the runs' overheads are least (``plan_runs``). Fixed lengths and
their timing (``fastest``) serve the server's rank requests and a ``run_length=`` given."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.errors import ConfigError

RUN_LENGTHS = (1, 2, 4, 8, 16, 32)  # the candidates
SENTENCE = (
    "please tell me why the payment I made yesterday to my landlord has not arrived yet and what "
    "I should do about the card that was declined at the shop this morning"
)  # 32 words
CACHE_ENV = "REC_EDGE_CACHE_DIR"  # where measured run lengths are kept; "" keeps none
RUN_LENGTH_ENV = "REC_EDGE_RUN_LENGTH"  # a run length for every Predictor: nothing is measured
MAX_RUN = 64  # the most texts a planned run holds, whatever the batch_size
SHAPES = ((1, 8), (1, 64), (16, 8), (16, 64))  # (texts, tokens) of the runs that fit_overhead times


def calibration_texts(size: int) -> list[str]:
    """``size`` texts of 4 to 32 words, of mixed lengths as real batches are."""
    words = SENTENCE.split()
    return [" ".join(words[: 4 + (7 * i) % 29]) for i in range(size)]


def fastest(
    run: Callable[[Sequence[Any], int], Any],
    items: Sequence[Any],
    lengths: Sequence[int] = RUN_LENGTHS,
    repeats: int = 3,
) -> int:
    """Of ``lengths`` (those up to ``len(items)``), the one with which ``run(items, length)``
    (the whole call, as a caller makes it: sorted and cut into runs of that length by ``run``)
    takes least time: ``repeats`` interleaved timings, medians."""
    sizes = [s for s in lengths if s <= len(items)] or [min(lengths)]
    seconds: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(repeats):
        for size in sizes:
            started = time.perf_counter()
            run(items, size)
            seconds[size].append(time.perf_counter() - started)
    return min(sizes, key=lambda s: statistics.median(seconds[s]))


def plan_runs(lengths: Sequence[int], limit: int, overhead: float) -> list[int]:
    """Where to cut texts sorted by token count (``lengths``, ascending) into runs of at most
    ``limit``: the cuts with the fewest padded tokens plus ``overhead`` tokens' worth per run
    (dynamic programming over the sorted order). Returns each run's end (exclusive)."""
    count = len(lengths)
    tokens = np.asarray(lengths, dtype=np.float64)
    best = np.full(count + 1, np.inf)
    best[0] = 0.0
    start = np.zeros(count + 1, dtype=np.int64)
    for end in range(1, count + 1):
        first = max(0, end - limit)
        costs = best[first:end] + overhead + (end - np.arange(first, end)) * tokens[end - 1]
        pick = int(np.argmin(costs))
        best[end], start[end] = costs[pick], first + pick
    ends, end = [], count
    while end > 0:
        ends.append(end)
        end = int(start[end])
    return ends[::-1]


def fit_overhead(seconds: Callable[[int, int], float], repeats: int = 5) -> float:
    """A run's fixed cost in tokens' worth of work: ``seconds(texts, tokens)`` of each of
    ``SHAPES`` (medians of ``repeats``, interleaved), fitted as a + b x texts x tokens; a / b."""
    times: dict[tuple[int, int], list[float]] = {shape: [] for shape in SHAPES}
    for _ in range(repeats):
        for shape in SHAPES:
            times[shape].append(seconds(*shape))
    design = np.array([[1.0, n * t] for n, t in SHAPES])
    observed = np.array([statistics.median(times[shape]) for shape in SHAPES])
    (fixed, per_token), *_ = np.linalg.lstsq(design, observed, rcond=None)
    return (
        float(max(fixed, 0.0) / per_token)
        if per_token > 0
        else float(MAX_RUN * max(t for _, t in SHAPES))
    )


def fixed_run_length() -> int | None:
    """``$REC_EDGE_RUN_LENGTH`` if set (a test suite, a machine measured once by hand)."""
    value = os.environ.get(RUN_LENGTH_ENV, "")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{RUN_LENGTH_ENV}={value!r}: a positive integer, or unset to measure")
    return int(value)


def _cache_file() -> Path | None:
    folder = os.environ.get(CACHE_ENV)
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "rec-edge")
    return Path(folder) / "run-costs.json" if folder else None


def cached(key: str) -> float | None:
    """The run overhead measured before under ``key`` (a bundle's model and this CPU), if any."""
    path = _cache_file()
    try:
        value = json.loads(path.read_text("utf-8")).get(key) if path else None
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


def remember(key: str, value: float) -> None:
    """Keep ``value`` under ``key``; a cache folder that cannot be written keeps nothing."""
    path = _cache_file()
    if path is None:
        return
    try:
        known = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        known = known if isinstance(known, dict) else {}
        known[key] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
        partial.replace(path)
    except (OSError, ValueError):
        pass
