"""Latency statistics (torch-free): percentiles, spread, throughput, ratios."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Seconds per call over n timed calls of ``items`` items each."""

    n: int
    items: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def from_samples(cls, seconds: Sequence[float], items: int = 1) -> LatencyStats:
        s = np.asarray(seconds, dtype=np.float64)
        if s.size == 0:
            raise ValueError("no samples")
        p50, p90, p95, p99 = np.percentile(s, [50, 90, 95, 99])  # linear interpolation
        return cls(
            int(s.size),
            items,
            float(p50),
            float(p90),
            float(p95),
            float(p99),
            float(s.mean()),
            float(s.std(ddof=1)) if s.size > 1 else 0.0,
            float(s.min()),
            float(s.max()),
        )

    @property
    def throughput(self) -> float:
        """Items per second at the median latency."""
        return self.items / self.p50

    def ratio_to(self, baseline: LatencyStats) -> float:
        """How many times faster than ``baseline`` at the median (>1: faster)."""
        return baseline.p50 / self.p50

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "throughput": self.throughput}
