"""TORCH-FREE: the session-run length that pays on this machine. On a CPU a padded run of many
texts is often slower per text than a few short runs, by a factor that depends on the CPU (runs
of 4 were the fastest on an AVX2 EPYC, runs of 1 on an AVX-512 VNNI Xeon: benchmarks/RESULTS.md),
so it is measured, not assumed: each candidate length times a batch of mixed lengths, interleaved,
medians. ``Predictor`` measures on first use and keeps the answer per bundle and CPU in the user's
cache folder; the server measures its own at load."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RUN_LENGTHS = (1, 2, 4, 8, 16, 32)  # the candidates
SENTENCE = (
    "please tell me why the payment I made yesterday to my landlord has not arrived yet and what "
    "I should do about the card that was declined at the shop this morning"
)  # 32 words
CACHE_ENV = "REC_EDGE_CACHE_DIR"  # where measured run lengths are kept; "" keeps none


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
    """Of ``lengths`` (those up to ``len(items)``), the one with which ``run(chunk, length)``
    over ``items`` in chunks of that length takes least time: ``repeats`` interleaved timings,
    medians."""
    sizes = [s for s in lengths if s <= len(items)] or [min(lengths)]
    seconds: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(repeats):
        for size in sizes:
            started = time.perf_counter()
            for start in range(0, len(items), size):
                run(items[start : start + size], size)
            seconds[size].append(time.perf_counter() - started)
    return min(sizes, key=lambda s: statistics.median(seconds[s]))


def _cache_file() -> Path | None:
    folder = os.environ.get(CACHE_ENV)
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "rec-edge")
    return Path(folder) / "run-lengths.json" if folder else None


def cached(key: str) -> int | None:
    """The run length measured before under ``key`` (a bundle's model and this CPU), if any."""
    path = _cache_file()
    try:
        value = json.loads(path.read_text("utf-8")).get(key) if path else None
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value in RUN_LENGTHS else None


def remember(key: str, length: int) -> None:
    """Keep ``length`` under ``key``; a cache folder that cannot be written keeps nothing."""
    path = _cache_file()
    if path is None:
        return
    try:
        known = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        known = known if isinstance(known, dict) else {}
        known[key] = length
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
        partial.replace(path)
    except (OSError, ValueError):
        pass
