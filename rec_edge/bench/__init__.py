"""TORCH-FREE benchmark core; the torch and optimum engines are imported only in their workers."""

from rec_edge.bench.runner import BenchResult, run_benchmark
from rec_edge.bench.stats import LatencyStats
from rec_edge.config import BenchConfig

__all__ = ["BenchConfig", "BenchResult", "LatencyStats", "run_benchmark"]
