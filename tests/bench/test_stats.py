"""Statistics against hand-computed values (fast, no engines)."""

import pytest

from rec_edge.bench.machine import macs_per_item
from rec_edge.bench.stats import LatencyStats
from rec_edge.config import BenchConfig
from rec_edge.errors import ConfigError


def test_percentiles_by_hand() -> None:
    # 1..101 ms: percentile k (linear interpolation) of 101 evenly spaced points is 1 + k ms
    stats = LatencyStats.from_samples([i / 1000 for i in range(1, 102)], items=4)
    assert stats.p50 == pytest.approx(0.051)
    assert stats.p90 == pytest.approx(0.091)
    assert stats.p95 == pytest.approx(0.096)
    assert stats.p99 == pytest.approx(0.100)
    assert stats.mean == pytest.approx(0.051)
    assert stats.min == 0.001 and stats.max == 0.101
    assert stats.throughput == pytest.approx(4 / 0.051)


def test_interpolation_and_std_by_hand() -> None:
    stats = LatencyStats.from_samples([1.0, 2.0, 3.0, 10.0])
    assert stats.p50 == 2.5  # between 2 and 3
    assert stats.p90 == pytest.approx(3 + 0.7 * 7)  # position 2.7 of 0..3
    assert stats.std == pytest.approx(
        ((1 - 4) ** 2 + (2 - 4) ** 2 + (3 - 4) ** 2 + (10 - 4) ** 2) ** 0.5 / 3**0.5
    )


def test_ratio() -> None:
    fast = LatencyStats.from_samples([0.01, 0.01, 0.01])
    slow = LatencyStats.from_samples([0.05, 0.05, 0.05])
    assert fast.ratio_to(slow) == pytest.approx(5.0)
    assert slow.ratio_to(fast) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_macs_per_item_by_hand() -> None:
    dims = {"hidden_size": 4, "num_hidden_layers": 2, "intermediate_size": 8}
    # per token: 2 * (4*16 + 2*4*8) = 256; 3 tokens: 768; attention 2 * 2 * 9 * 4 = 144
    assert macs_per_item(dims, 3) == 912
    assert macs_per_item({}, 3) is None


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="engines=\\['tensorflow'\\]"):
        BenchConfig(bundles=["b"], engines=["tensorflow"])
    with pytest.raises(ConfigError, match="baseline='torch' is not among"):
        BenchConfig(bundles=["b"], baseline="torch")
    assert BenchConfig(bundles=["b"]).seq_lengths == [32, 128]
